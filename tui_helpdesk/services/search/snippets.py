"""The excerpt shown under a search result: a line of the matching message around its first hit.

Cut in Python from the message read for the result (the same on both backends, and no markup:
the indexes' own highlighters write tags into the text). Control and bidi characters and runs
of spaces become one space, so the (start, end) offsets of the hits stay true after a screen
cleans the text; the excerpt is still text from mail, shown as such.
"""

from __future__ import annotations

import re

from tui_helpdesk.services.search.query import Term

WIDTH = 160
LEAD = 40  # characters kept before the first hit
_BLANKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")
_WORD = re.compile(r"[^\W_]+")


def hit_pattern(terms: tuple[Term, ...]) -> re.Pattern[str] | None:
    """Whole words of the terms (prefix terms: word starts), any case."""
    alternatives = set()
    for term in terms:
        words = _WORD.findall(term.text)
        for position, word in enumerate(words):
            open_end = term.prefix and position == len(words) - 1
            alternatives.add(re.escape(word) + (r"[^\W_]*" if open_end else r"(?![^\W_])"))
    if not alternatives:
        return None
    return re.compile(r"(?<![^\W_])(?:" + "|".join(sorted(alternatives)) + ")", re.IGNORECASE)


def snippet(
    texts: list[str], pattern: re.Pattern[str] | None
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """From the first text with a hit (body, subject, sender…), else the first non-empty."""
    flat = [_BLANKS.sub(" ", text).strip() for text in texts]
    chosen = next((t for t in flat if pattern and pattern.search(t)), None)
    if chosen is None:
        return next((t[:WIDTH] for t in flat if t), ""), ()
    assert pattern is not None
    first = pattern.search(chosen)
    assert first is not None
    start = max(0, first.start() - LEAD)
    if start:
        space = chosen.find(" ", start)
        start = space + 1 if 0 <= space < first.start() else start
    excerpt = chosen[start : start + WIDTH]
    prefix = "…" if start else ""
    suffix = "…" if start + WIDTH < len(chosen) else ""
    text = prefix + excerpt + suffix
    spans = tuple(
        (m.start() + len(prefix), m.end() + len(prefix)) for m in pattern.finditer(excerpt)
    )
    return text, spans
