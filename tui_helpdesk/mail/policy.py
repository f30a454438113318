"""The stdlib `email` parser, configured once for every part of the mail parser.

policy.default re-parses Content-Type on every access (the feed parser alone asks four times per
part); header objects are immutable, so a bounded cache keyed on the raw value makes repeated and
common values (e.g. "text/plain; charset=utf-8") nearly free.
"""

from __future__ import annotations

import functools
from email import policy as email_policy
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from typing import Any

_MAX_CACHED_VALUE = 200


class _CachingHeaderRegistry(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._cached = functools.lru_cache(maxsize=1024)(super().__call__)

    def __call__(self, name: str, value: str) -> Any:
        if len(value) > _MAX_CACHED_VALUE:
            return super().__call__(name, value)
        return self._cached(name, value)


POLICY = email_policy.default.clone(header_factory=_CachingHeaderRegistry())
_PARSER = BytesParser(policy=POLICY)
GENERATOR_POLICIES = {
    nl: POLICY.clone(refold_source="none", linesep=nl, max_line_length=0) for nl in ("\r\n", "\n")
}


def parse_tree(raw: bytes, notes: list[str]) -> Message | None:
    """The message tree; headers only when the full parse fails; None when even that fails."""
    try:
        return _PARSER.parsebytes(raw)
    except Exception as exc:
        notes.append(f"parse-error:{type(exc).__name__}")
    try:
        return _PARSER.parsebytes(raw, headersonly=True)
    except Exception as exc:
        notes.append(f"parse-error:{type(exc).__name__}")
        return None
