"""The regular expressions admins write in routing conditions (F34), run by RE2.

Patterns come from admins but run on text from strangers. RE2 (google-re2) matches in time
linear in the text, with no backtracking, so no pattern can make one mail take exponential
time; it has no back-references or look-arounds, and such patterns are refused when the rule
is saved. Linear is not free: RE2's automaton can fall back to simulating every state at every
character, so a pattern's compiled program size is capped too, and a pattern looks at the first
MAX_REGEX_SCANNED characters of a field. Whatever is left, the store's processing budget
(smtp.processing_budget_seconds) bounds: a mail over it is kept raw, the rest go on.
"""

from __future__ import annotations

import functools

import re2

from tui_helpdesk.errors import Invalid

MAX_VALUE = 500  # characters of a condition value, a pattern included
MAX_PROGRAM_SIZE = 1_000  # RE2 instructions; time per character grows with it in the worst case
MAX_REGEX_SCANNED = 65_536  # characters of one field a pattern looks at
_MAX_MEMORY = 8 << 20  # bytes RE2 may use for one pattern (program and automaton cache)


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False  # matching is case-insensitive, as for keywords
    options.log_errors = False  # a refused pattern is the admin's message, not a log line
    options.max_mem = _MAX_MEMORY
    return options


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile an admin's pattern with RE2, or refuse it with a message saying why."""
    if len(pattern) > MAX_VALUE:
        raise Invalid(f"pattern longer than {MAX_VALUE} characters", field="value")
    try:
        compiled = re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args else str(exc)
        raise Invalid(
            f"regular expression {pattern!r} is not accepted: {reason}. Patterns run on RE2, a "
            "linear-time engine: back-references (\\1) and look-arounds ((?=, (?!, (?<=, (?<!) "
            "are not available, and a counted repetition may repeat at most 1000 times",
            field="value",
        ) from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise Invalid(
            f"regular expression {pattern!r} is too large to run on every mail (RE2 program of "
            f"{compiled.programsize} instructions, at most {MAX_PROGRAM_SIZE}): use smaller "
            "counted repetitions, e.g. .* instead of .{0,500}",
            field="value",
        )
    return compiled


def pattern_matches(pattern: str, text: str) -> bool:
    """Search the first MAX_REGEX_SCANNED characters of `text` for the pattern."""
    return compile_pattern(pattern).search(text[:MAX_REGEX_SCANNED]) is not None
