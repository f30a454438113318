"""Small display formats shared by screens: ages, dates and sizes."""

from __future__ import annotations

from datetime import UTC, datetime


def age(then: datetime, now: datetime) -> str:
    """A short age like 'now', '5m', '3h', '2d', '6w', '2y' (how long a conversation waited)."""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600)):
        if seconds >= size * (2 if unit == "w" else 1):
            return f"{seconds // size}{unit}"
    minutes = seconds // 60
    return f"{minutes}m" if minutes else "now"


def when(value: datetime | None) -> str:
    """An absolute date in UTC, the same for every agent and every test run."""
    if value is None:
        return "unknown"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def size(count: int) -> str:
    """Bytes as a person reads them: '512 B', '1.2 KB', '3.4 MB'."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
