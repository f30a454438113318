"""The one gate for mail text: no escape sequence, control or bidi character reaches the screen."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tui_helpdesk.tui.widgets.safe_text import clean, clean_line, safe_text

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_markup_is_kept_literally() -> None:
    text = safe_text("[bold red]x[/] [link=http://evil]y[/link]")
    assert text.plain == "[bold red]x[/] [link=http://evil]y[/link]"
    assert not text.spans


def test_escape_sequences_go_with_their_parameters() -> None:
    assert clean("\x1b[31mred\x1b[0m") == "red"
    assert clean("a\x1b]0;window title\x07b") == "ab"
    assert clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean("a\x1bcb") == "ab"
    assert clean("unterminated \x1b]0;title") == "unterminated "
    assert clean("stray \x1b]0;osc\nnext line kept") == "stray \nnext line kept"
    assert clean("c1 csi \x9b31mred") == "c1 csi red"
    assert clean("mis-decoded \x9dcp1252 keeps its text") == "mis-decoded cp1252 keeps its text"


def test_bidi_overrides_and_lone_surrogates() -> None:
    assert clean("invoice\u202efdp.exe") == "invoicefdp.exe"
    assert clean("bad \udcff byte") == "bad \ufffd byte"


def test_line_breaks_are_normalised_and_one_line_fields_flattened() -> None:
    assert clean("a\r\nb\rc\u2028d") == "a\nb\nc\nd"
    assert clean("keep\ttabs") == "keep\ttabs"
    assert clean_line("  Re:\r\n\tfolded   subject ") == "Re: folded subject"


@given(st.text())
def test_no_control_character_survives(value: str) -> None:
    cleaned = clean(value)
    assert not FORBIDDEN.search(cleaned)
    assert "\x1b" not in cleaned
    assert not re.search("[\ud800-\udfff]", cleaned)
    cleaned.encode("utf-8")  # always writable to a UTF-8 terminal
    line = clean_line(value)
    assert "\n" not in line and "\t" not in line
