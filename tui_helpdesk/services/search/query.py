"""The search query language: words typed by a person → text terms and filters.

    word        a word anywhere: subject, bodies, sender and recipients
    wor*        words starting with "wor"
    "a phrase"  these words in this order
    from:X      X in a message's sender (name or address); to:X in its To or Cc
    status:open|pending|closed   queue:NAME   mailbox:ADDRESS   tag:TAG
    assignee:me|none|EMAIL       has:attachment
    auth:fail|spoof|lookalike|pass   who sent a message (F75): fail = DMARC failed, or SPF or
                every DKIM signature failed; spoof / lookalike = flagged; pass = DMARC passed
    before:YYYY-MM-DD   after:YYYY-MM-DD   (last activity, in the searcher's timezone)
    -anything   negates a word, phrase or filter (-tag:spam, -"out of office")

Everything typed is text, never syntax of the database: a query cannot fail with a database
error, only with an Invalid naming the part that is wrong.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date

from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.conversations.fields import STATUSES

TEXT_FILTERS = ("from", "to")
FILTERS = (*TEXT_FILTERS, "status", "queue", "mailbox", "assignee", "tag", "before", "after", "has",
           "auth")  # fmt: skip
HAS = ("attachment",)
AUTH = ("fail", "spoof", "lookalike", "pass")
MAX_QUERY = 1000
MAX_PARTS = 32
WORD = re.compile(r"[^\W_]")  # what both full-text indexes count as part of a word
_FILTER = re.compile(r"([A-Za-z]+):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no index holds them; NUL ends an FTS5 string


@dataclass(frozen=True)
class Term:
    """Text to find: words anywhere (field None) or in the sender ("from") / recipients ("to")."""

    text: str
    field: str | None = None
    phrase: bool = False
    prefix: bool = False
    negated: bool = False


@dataclass(frozen=True)
class Filter:
    name: str
    value: str
    negated: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    terms: tuple[Term, ...]
    filters: tuple[Filter, ...]

    @property
    def positive(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.negated)

    @property
    def negative(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.negated)


def parse(text: str) -> ParsedQuery:
    if len(text) > MAX_QUERY:
        raise Invalid(f"a search is at most {MAX_QUERY} characters", field="query")
    terms: list[Term] = []
    filters: list[Filter] = []
    for part in _parts(_CONTROL.sub(" ", text)):
        if isinstance(part, Term):
            if WORD.search(part.text):  # "*", "-", ":" alone: nothing to look for
                terms.append(part)
        else:
            filters.append(part)
    if not terms and not filters:
        raise Invalid("type words or filters to search for (like: printer status:open)",
                      field="query")  # fmt: skip
    if len(terms) + len(filters) > MAX_PARTS:
        raise Invalid(f"a search holds at most {MAX_PARTS} words and filters", field="query")
    return ParsedQuery(tuple(terms), tuple(filters))


def _parts(text: str) -> list[Term | Filter]:
    """Split at spaces outside quotes; each part is a term or a filter."""
    found: list[Term | Filter] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        negated = text[position] == "-" and position + 1 < len(text)
        start = position + 1 if negated else position
        part, position = _part(text, start, negated)
        found.append(part)
    return found


def _part(text: str, start: int, negated: bool) -> tuple[Term | Filter, int]:
    named = _FILTER.match(text, start)
    if named is not None and not text.startswith("//", named.end()):  # https://… is text
        name = named.group(1).lower()
        value, end, quoted = _value(text, named.end())
        return _filter(name, value, quoted, negated), end
    value, end, quoted = _value(text, start)
    prefix = not quoted and value.endswith("*")
    return Term(value.rstrip("*") if prefix else value, None, quoted, prefix, negated), end


def _value(text: str, start: int) -> tuple[str, int, bool]:
    """A quoted string (quotes removed) or the text up to the next space."""
    if start < len(text) and text[start] == '"':
        end = text.find('"', start + 1)
        if end < 0:
            raise Invalid(f"the quote opened at character {start + 1} is not closed", field="query")
        return text[start + 1 : end], end + 1, True
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end], end, False


def _filter(name: str, value: str, quoted: bool, negated: bool) -> Term | Filter:
    if name not in FILTERS:
        raise Invalid(_unknown(name), field="query")
    if not value.strip():
        raise Invalid(f"{name}: needs a value (like {_example(name)})", field="query")
    if name in TEXT_FILTERS:
        prefix = not quoted and value.endswith("*")
        return Term(value.rstrip("*") if prefix else value, name, quoted, prefix, negated)
    return Filter(name, _checked(name, value.strip()), negated)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, FILTERS, n=1, cutoff=0.6)
    if close:
        return f"unknown filter '{name}:' — did you mean {close[0]}:?"
    known = ", ".join(f"{f}:" for f in FILTERS)
    return f"unknown filter '{name}:' (filters: {known}); to find the text, quote it: \"{name}:\""


def _example(name: str) -> str:
    return {
        "from": "from:ada@example.com", "to": "to:support@example.com",
        "status": "status:open", "queue": "queue:Support", "mailbox": "mailbox:support@acme.test",
        "assignee": "assignee:me", "tag": "tag:billing", "before": "before:2026-01-31",
        "after": "after:2026-01-01", "has": "has:attachment", "auth": "auth:spoof",
    }[name]  # fmt: skip


def _checked(name: str, value: str) -> str:
    """Values that need no database are checked here; names are resolved later."""
    if name == "status" and value.lower() not in STATUSES:
        raise Invalid(f"status: must be one of {', '.join(STATUSES)}, got {value!r}", field="query")
    if name == "has" and value.lower() not in HAS:
        raise Invalid(f"has: only has:attachment is known, got {value!r}", field="query")
    if name == "auth" and value.lower() not in AUTH:
        raise Invalid(f"auth: must be one of {', '.join(AUTH)}, got {value!r}", field="query")
    if name in ("before", "after"):
        parse_date(name, value)
    return value.lower() if name in ("status", "has", "tag", "auth") else value


def parse_date(name: str, value: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: needs a date YYYY-MM-DD, got {value!r}", field="query") from None
