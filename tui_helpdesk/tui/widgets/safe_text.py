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
    text = clean(value, one_line=one_line)
    if one_line:
        text = _WHITESPACE_RUN.sub(" ", text).strip()
    return Text(text, style=style, end="")
