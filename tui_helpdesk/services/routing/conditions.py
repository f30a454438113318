"""Checking what admins write into routing rules (F34): conditions, priority, tag, name.

Shared by the admin services (which refuse bad input) and the inbound path (which skips a
stored rule that no longer validates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.conversations.fields import TAG
from tui_helpdesk.services.routing.patterns import MAX_VALUE, compile_pattern
from tui_helpdesk.services.vocabulary import PRIORITIES, ROUTING_FIELDS, ROUTING_OPS

HEADER_PREFIX = "header:"
MAX_CONDITIONS = 20
MAX_NAME = 255
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 field name: printable, no colon


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


def validate_condition(raw: object, *, where: str) -> Condition:
    """One {"field", "op", "value"} entry, with errors naming the rule and the condition."""
    if not isinstance(raw, dict):
        raise Invalid(f"{where}: expected {{field, op, value}}, got {raw!r}", field="conditions")
    field, op, value = raw.get("field"), raw.get("op"), raw.get("value")
    if not isinstance(field, str) or not _known_field(field):
        raise Invalid(
            f"{where}: field must be one of {', '.join(ROUTING_FIELDS)} or header:<Name>, "
            f"got {field!r}",
            field="conditions",
        )
    if op not in ROUTING_OPS:
        raise Invalid(
            f"{where}: op must be one of {', '.join(ROUTING_OPS)}, got {op!r}", field="conditions"
        )
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE:
        raise Invalid(
            f"{where}: value must be 1-{MAX_VALUE} characters of text", field="conditions"
        )
    if op == "matches":
        try:
            compile_pattern(value)
        except Invalid as exc:
            raise Invalid(f"{where}: {exc.message}", field="conditions") from None
    field = field.lower() if not field.lower().startswith(HEADER_PREFIX) else _header_field(field)
    return Condition(field=field, op=str(op), value=value if op == "matches" else value.strip())


def _known_field(field: str) -> bool:
    if field.lower().startswith(HEADER_PREFIX):
        return bool(_HEADER_NAME.match(field[len(HEADER_PREFIX) :].strip()))
    return field.lower() in ROUTING_FIELDS


def _header_field(field: str) -> str:
    return HEADER_PREFIX + field[len(HEADER_PREFIX) :].strip()


def validate_conditions(raw: object, *, rule: str) -> list[Condition]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise Invalid(f"rule {rule!r}: give at least one condition", field="conditions")
    if len(raw) > MAX_CONDITIONS:
        raise Invalid(f"rule {rule!r}: at most {MAX_CONDITIONS} conditions", field="conditions")
    return [
        validate_condition(item, where=f"rule {rule!r}, condition {n}")
        for n, item in enumerate(raw, start=1)
    ]


def validate_priority(value: object, *, rule: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in PRIORITIES:
        raise Invalid(
            f"rule {rule!r}: priority must be one of {', '.join(PRIORITIES)}, got {value!r}",
            field="priority",
        )
    return str(value)


def validate_tag(value: object, *, rule: str) -> str | None:
    if value is None or value == "":
        return None
    tag = value.strip().lower() if isinstance(value, str) else ""
    if not TAG.match(tag):
        raise Invalid(
            f"rule {rule!r}: tag must be 1-64 letters, digits or . : / + - _ without spaces, "
            f"got {value!r}",
            field="tag",
        )
    return tag


def validate_name(value: object) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"name: give a rule name of 1-{MAX_NAME} characters", field="name")
    return name
