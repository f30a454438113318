"""Typed service errors. Each says what a person must change; the CLI maps them to exit codes."""

from __future__ import annotations


class HelpdeskError(Exception):
    """Base of every error a service raises on purpose."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        return {"error": self.kind, "message": self.message, "field": self.field}


class Invalid(HelpdeskError):
    """Input breaks a rule (HTTP 422)."""

    exit_code = 2
    kind = "invalid"


class NotFound(HelpdeskError):
    """The thing named does not exist, or is not visible to the actor (HTTP 404)."""

    exit_code = 3
    kind = "not_found"


class Conflict(HelpdeskError):
    """The change clashes with the current state (HTTP 409)."""

    exit_code = 4
    kind = "conflict"


class LimitReached(HelpdeskError):
    """A configured limit would be exceeded."""

    exit_code = 5
    kind = "limit"


class PermissionDenied(HelpdeskError):
    """The acting user may not do this (HTTP 403)."""

    exit_code = 6
    kind = "permission"


class ConfigError(HelpdeskError):
    """The configuration file or environment holds a bad value."""

    exit_code = 2
    kind = "config"
