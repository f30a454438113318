"""The guard on admins' regular expressions in routing conditions (F34).

Patterns come from admins but run on text from strangers, and Python's engine backtracks and
cannot be interrupted, so the bound is structural: a length limit, a refusal of nested repetition
(the classic catastrophic-backtracking shape), a cap on the tries and on the text scanned.
"""

from __future__ import annotations

import functools
import re
import warnings
from typing import Any

from tui_helpdesk.errors import Invalid

try:  # the regex parser is the only reliable way to see the shape of a pattern
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]

MAX_VALUE = 500  # characters of a condition value, a pattern included
MAX_REGEX_SCANNED = 2_048  # characters a regular expression looks at: bounds its worst case
MAX_REGEX_STEPS = 40_000_000  # tries allowed over those characters: well under a second
_REPEATS = {
    _sre_parse.MAX_REPEAT,
    _sre_parse.MIN_REPEAT,
    getattr(_sre_parse, "POSSESSIVE_REPEAT", None),
}


def _parts(op: Any, arg: Any) -> list[Any]:
    """The sub-patterns inside one parsed regex token (sequences of tokens)."""
    if op is _sre_parse.SUBPATTERN:
        return [arg[-1]]
    if op is _sre_parse.BRANCH:
        return list(arg[1])
    if op in (_sre_parse.ASSERT, _sre_parse.ASSERT_NOT):
        return [arg[1]]
    if op is getattr(_sre_parse, "ATOMIC_GROUP", None):
        return [arg]
    if op is _sre_parse.GROUPREF_EXISTS:
        return [part for part in arg[1:] if part is not None]
    return []


def _unbounded(high: int) -> bool:
    return high == _sre_parse.MAXREPEAT or high > 100


def _risk(tokens: Any, inside: bool = False) -> str | None:
    """The shape that makes a pattern backtrack exponentially, or None.

    Inside a repetition, another unbounded repetition ((a+)+) or an alternation ((a|ab)*)
    can match the same text in exponentially many ways.
    """
    for op, arg in tokens:
        if op in _REPEATS:
            _low, high, sub = arg
            if inside and _unbounded(high):
                return "repeats a repetition"
            found = _risk(sub, inside or high > 1)
            if found is None and _unbounded(high) and _has_branch(sub):
                found = "repeats an alternation"
        else:
            found = next(filter(None, (_risk(part, inside) for part in _parts(op, arg))), None)
        if found:
            return found
    return None


def _has_branch(tokens: Any) -> bool:
    return any(
        op is _sre_parse.BRANCH or any(_has_branch(part) for part in _parts(op, arg))
        for op, arg in tokens
    )


def _paths(tokens: Any, scanned: int) -> float:
    """An upper bound of the ways one start position can be tried: a product over the
    repetitions in sequence (an unbounded one counts the whole scanned text)."""
    total = 1.0
    for op, arg in tokens:
        if op in _REPEATS:
            _low, high, sub = arg
            total *= (min(high, scanned) + 1) * _paths(sub, scanned)
        elif op is _sre_parse.BRANCH:
            total *= sum(_paths(branch, scanned) for branch in arg[1])
        else:
            for part in _parts(op, arg):
                total *= _paths(part, scanned)
    return total


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an admin's regular expression, refusing shapes that can take too long.

    Python's engine backtracks and cannot be interrupted from another thread, so the bound is
    structural: no exponential shapes, and at most MAX_REGEX_STEPS tries over the
    MAX_REGEX_SCANNED characters a condition looks at (in practice: one unbounded *, + or
    {n,}, plus small bounded ones).
    """
    if len(pattern) > MAX_VALUE:
        raise Invalid(f"pattern longer than {MAX_VALUE} characters", field="value")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible nested set" notes
            parsed = _sre_parse.parse(pattern, re.IGNORECASE)
            compiled = re.compile(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Invalid(f"not a valid regular expression: {exc}", field="value") from None
    risk = _risk(parsed)
    if risk:
        raise Invalid(
            f"regular expression {pattern!r} {risk}, which can take exponential time on "
            "hostile mail; simplify it (e.g. (ab)+ instead of (a+b*)+, [ab]+ instead of (a|b)+)",
            field="value",
        )
    if MAX_REGEX_SCANNED * _paths(parsed, MAX_REGEX_SCANNED) > MAX_REGEX_STEPS:
        raise Invalid(
            f"regular expression {pattern!r} can backtrack too much on hostile mail: use at "
            "most one unbounded *, + or {n,} (a search finds the text anywhere, so a leading "
            "or trailing .* is never needed)",
            field="value",
        )
    return compiled


def pattern_matches(pattern: str, text: str) -> bool:
    """Search the first MAX_REGEX_SCANNED characters of `text` (the bound of the worst case)."""
    return compile_pattern(pattern).search(text[:MAX_REGEX_SCANNED]) is not None
