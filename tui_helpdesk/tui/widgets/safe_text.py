"""The one gate between text from mail and the terminal.

Mail is hostile input: a subject may carry Rich markup ("[bold red]"), terminal escape sequences
("\\x1b]0;title\\x07", "\\x1b[2J"), C1 controls, bidi overrides that reorder what is shown, or lone
surrogates left by a broken charset. Everything from mail passes through clean() and is shown as
rich.text.Text, which is never parsed as markup.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text

# ESC sequences first, so their parameters go with them: CSI (also its 8-bit form 0x9b),
# OSC/DCS/PM/APC/SOS strings, then two-character escapes. A string sequence ends at BEL, ST or
# the end of its line, so a stray ESC ] never hides the rest of a message. Other C1 characters
# (U+0080-U+009F, often mis-decoded cp1252) are only dropped, below, taking no text with them.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\n]*?(?:\x07|\x9c|\x1b\\|(?=\n)|$)"
    r"|\x1b[ -/]*[0-~]"
)
# C0 except tab and newline, DEL, C1, bidi embeddings/overrides/isolates and the Arabic letter
# mark; lone surrogates are replaced rather than dropped so the reader sees something was there.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|\r|\u2028|\u2029|\x85")
_WHITESPACE_RUN = re.compile(r"\s+")


def clean(value: str | None) -> str:
    """Text safe for the terminal: escape sequences and control characters removed."""
    if not value:
        return ""
    value = _LINE_BREAKS.sub("\n", value)
    value = _ESCAPES.sub("", value)
    value = _CONTROLS.sub("", value)
    return _SURROGATES.sub("\ufffd", value)


def clean_line(value: str | None) -> str:
    """clean() for one-line fields (subject, sender): any run of whitespace becomes one space."""
    return _WHITESPACE_RUN.sub(" ", clean(value)).strip()


def safe_text(value: str | None, style: str | Style = "", *, one_line: bool = False) -> Text:
    """A Text holding the cleaned value literally; never interpreted as markup."""
    return Text(clean_line(value) if one_line else clean(value), style=style, end="")
