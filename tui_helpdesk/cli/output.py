"""Text output for people: aligned key-value lists and tables, safe for any terminal.

Values can come from mail (subjects, names), so every value is cleaned by terminal_text.clean
before it reaches the terminal, on one line (newlines and tabs become spaces) in lists and
tables; JSON output escapes control characters instead (json.dumps with ensure_ascii).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from rich.cells import cell_len, set_cell_size

from tui_helpdesk.records import to_jsonable
from tui_helpdesk.terminal_text import clean

CELL_WIDTH = 48


def fmt(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) or "-"
    return clean(str(value), one_line=True)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    pairs = list(pairs)
    width = max((len(key) for key, _ in pairs), default=0)
    return "\n".join(f"{key + ':':<{width + 1}} {fmt(value)}" for key, value in pairs)


def record_pairs(record: Any, *, skip: Sequence[str] = ()) -> list[tuple[str, Any]]:
    return [
        (f.name.replace("_", " "), getattr(record, f.name))
        for f in dataclasses.fields(record)
        if f.name not in skip
    ]


def _cell(value: Any) -> str:
    text = fmt(value)
    return text if cell_len(text) <= CELL_WIDTH else set_cell_size(text, CELL_WIDTH - 1) + "…"


def _pad(text: str, width: int) -> str:
    """Pad to a width in terminal cells (CJK characters take two)."""
    return text + " " * (width - cell_len(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "") -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    if not cells:
        return empty or "(none)"
    widths = [max(cell_len(h), *(cell_len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h.upper(), w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2)


def echo(text: str) -> None:
    click.echo(text)
