"""Mail text as Rich Text for the screen: cleaned by terminal_text.clean, never read as markup.

A subject may carry Rich markup ("[bold red]"); shown as rich.text.Text it stays literal. What
the cleaning removes is terminal_text's rule, the same the command line applies.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text

from tui_helpdesk.terminal_text import clean

_WHITESPACE_RUN = re.compile(r"\s+")


def safe_text(value: str | None, style: str | Style = "", *, one_line: bool = False) -> Text:
    """A Text holding the cleaned value literally.

    one_line is for fields shown on one line (subject, sender, file name): a folded header
    reads as one line, so any run of whitespace becomes one space.
    """
    text = safe_line(value) if one_line else clean(value)
    return Text(text, style=style, end="")


def safe_line(value: str | None) -> str:
    """The cleaned value as one line of plain text (for a widget that draws segments itself,
    as the conversation list does: no Text made and thrown away per cell)."""
    return _WHITESPACE_RUN.sub(" ", clean(value, one_line=True)).strip()
