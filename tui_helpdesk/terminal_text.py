"""Text from mail made safe for a terminal: the one cleaner both the CLI and the TUI use.

Mail is hostile input: a subject may carry terminal escape sequences ("\\x1b]0;title\\x07" sets
the window title, "\\x1b[2J" clears the screen), C1 controls, bidi controls that reorder what is
shown ("invoice\\u202efdp.exe" reads "invoiceexe.pdf"), invisible characters, or lone
surrogates left by a broken charset. The rule, which tests/test_terminal_text.py checks against
`unicodedata` over every code point:

- escape sequences go together with their parameters: CSI (ESC [ or the 8-bit 0x9B, up to the
  final byte), the string sequences OSC, DCS, PM, APC and SOS (up to BEL, ST or the end of their
  line, so a stray one never hides the rest of a message), and two-character escapes;
- every other character of category Cc goes (C0, DEL, C1), except newline and tab;
- every character of category Cf goes (bidi embeddings, overrides, isolates and marks, the
  Arabic letter mark, zero-width space, soft hyphen, byte order mark, invisible operators, tag
  characters...) except U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER, which Persian
  and Indic words and emoji sequences need (variation selectors are Mn, not Cf: they stay);
- CR, CR LF, NEL and the line and paragraph separators (Zl, Zp) become newlines; with
  `one_line=True` every newline and tab becomes a space (a table cell, a subject line);
- a lone surrogate becomes U+FFFD, so the reader sees something was there and the text can
  always be written as UTF-8.

The Cf list is Unicode 14's (Python 3.11); the test fails when a newer Python knows more.
Pure Python (no Rich, Textual or click), so every layer that shows text may import it.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\n]*?(?:\x07|\x9c|\x1b\\|(?=\n)|$)"
    r"|\x1b[ -/]*[0-~]"
)
_LINE_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_REMOVED = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_FORMAT}]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_ONE_LINE = str.maketrans("\n\t", "  ")


def clean(value: str | None, *, one_line: bool = False) -> str:
    """`value` as it may reach a terminal (see the module's rule); "" for None."""
    if not value:
        return ""
    value = _LINE_BREAKS.sub("\n", value)
    value = _ESCAPES.sub("", value)
    value = _REMOVED.sub("", value)
    value = _SURROGATES.sub("\ufffd", value)
    return value.translate(_ONE_LINE) if one_line else value
