"""The values a conversation's status, priority and tags may take (F42), checked in one place."""

from __future__ import annotations

import re

from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.vocabulary import CONVERSATION_STATUSES as STATUSES
from tui_helpdesk.services.vocabulary import PRIORITIES

TAG_MAX = 64
TAG = re.compile(r"^\w[\w.:/+-]{0,63}$")  # routing rules add tags under the same rule


def validate_status(value: str) -> str:
    if value not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}, got {value!r}", field="status")
    return value


def validate_priority(value: str) -> str:
    if value not in PRIORITIES:
        raise Invalid(
            f"priority must be one of {', '.join(PRIORITIES)}, got {value!r}", field="priority"
        )
    return value


def validate_tag(value: str) -> str:
    """Tags are stored lowercase, so `VIP` and `vip` are one tag."""
    tag = value.strip().lower()
    if not TAG.match(tag):
        raise Invalid(
            f"tag must be 1-{TAG_MAX} letters, digits or . : / + - _ without spaces, "
            f"starting with a letter or digit; got {value!r}",
            field="tag",
        )
    return tag
