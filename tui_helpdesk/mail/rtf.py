"""RTF → readable text, for the RTF bodies Outlook puts in TNEF (striprtf).

striprtf runs two regular expressions over the whole document before its linear pass, and both
backtrack without bound on hostile input: the font-table one took 8 s on 1.5 KB and 128 s on
3 KB of font entries without ";", the hyperlink one 72 s on 66 KB of unclosed fields. Both are
disarmed here, in linear time, before striprtf sees the text:
- every font table becomes an ignorable group striprtf does not recognise as one (so its
  expression never runs), and the document's code page (\\ansicpgN) is passed as the encoding
  instead (per-font character sets are not used);
- `{\\field{` gets a space before its second brace (an RTF delimiter, so the document means the
  same), which the hyperlink expression never matches: a link shows its text, not its address.
"""

from __future__ import annotations

import codecs
import re

from striprtf.striprtf import rtf_to_text

from tui_helpdesk.mail.charsets import clean_body_text

_FIELD = re.compile(r"\{\\field\{", re.IGNORECASE)
_CODE_PAGE = re.compile(r"\\ansicpg(\d{1,5})")
_DEFAULT_ENCODING = "cp1252"


def rtf_text(rtf: bytes, notes: list[str]) -> str:
    """The text of an RTF document; "" with an `rtf-error:<reason>` defect when it has none."""
    document = rtf.rstrip(b"\x00").decode("latin-1")  # RTF is 7-bit; 8-bit bytes kept as is
    document = document.replace("\\fonttbl", "\\*\\fonttbx")
    document = _FIELD.sub(r"{\\field {", document)
    try:
        text = rtf_to_text(document, encoding=_encoding(document), errors="replace")
    except Exception as exc:  # a \bin without a length, an unknown code page in the document
        notes.append(f"rtf-error:{type(exc).__name__}")
        return ""
    return clean_body_text(text).strip("\n")


def _encoding(document: str) -> str:
    found = _CODE_PAGE.search(document)
    if not found:
        return _DEFAULT_ENCODING
    try:
        return codecs.lookup(f"cp{found.group(1)}").name
    except LookupError:
        return _DEFAULT_ENCODING
