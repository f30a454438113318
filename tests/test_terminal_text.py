"""terminal_text.clean, the one gate between mail text and a terminal (CLI and TUI alike).

What may survive is defined here independently of the product's patterns, from the Unicode
categories (`unicodedata.category`) and the rule the module states: no Cc except newline and
tab (neither on one line), no Cf except ZERO WIDTH NON-JOINER and JOINER, no Zl or Zp, no lone
surrogate; the bidi controls are named one by one as well.
"""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_helpdesk.terminal_text import clean

KEPT_FORMAT = {"\u200c", "\u200d"}
BIDI_CONTROLS = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F))}
BIDI_CONTROLS |= set(map(chr, range(0x2066, 0x206A)))
LINE_BREAKS = {"\r", "\x85", "\u2028", "\u2029"}  # become "\n"
STARTS_A_SEQUENCE = {"\x1b", "\x9b"}  # ESC and 8-bit CSI take the characters after them


def may_survive(char: str, *, one_line: bool) -> bool:
    if char in "\n\t":
        return not one_line
    category = unicodedata.category(char)
    if category == "Cf":
        return char in KEPT_FORMAT
    return category not in ("Cc", "Zl", "Zp", "Cs")


def expected(text: str, *, one_line: bool) -> str:
    """What the rule keeps of text holding no escape sequence."""
    out = []
    for char in text:
        if char in LINE_BREAKS or char == "\n":
            out.append(" " if one_line else "\n")
        elif char == "\t" and one_line:
            out.append(" ")
        elif unicodedata.category(char) == "Cs":
            out.append("\ufffd")
        elif may_survive(char, one_line=one_line):
            out.append(char)
    return "".join(out)


@pytest.mark.parametrize("one_line", [False, True], ids=["text", "one line"])
def test_every_code_point_is_kept_or_removed_by_its_category(one_line: bool) -> None:
    everything = "".join(
        chr(c) for c in range(sys.maxunicode + 1) if chr(c) not in STARTS_A_SEQUENCE
    )
    assert clean(everything, one_line=one_line) == expected(everything, one_line=one_line)


@given(st.text())
def test_nothing_forbidden_survives_any_text(value: str) -> None:
    for one_line in (False, True):
        cleaned = clean(value, one_line=one_line)
        assert all(may_survive(char, one_line=one_line) for char in cleaned)
        assert not BIDI_CONTROLS & set(cleaned)
        cleaned.encode("utf-8")  # always writable to a UTF-8 terminal


@given(st.text(st.characters(exclude_characters=STARTS_A_SEQUENCE)))
def test_text_without_escape_sequences_loses_only_what_the_rule_removes(value: str) -> None:
    unix = value.replace("\r\n", "\n")  # one line break, not two
    for one_line in (False, True):
        assert clean(value, one_line=one_line) == expected(unix, one_line=one_line)


def test_escape_sequences_go_with_their_parameters() -> None:
    assert clean("\x1b[31mred\x1b[0m") == "red"
    assert clean("\x1b[38;2;255;0;0mtrue colour\x1b[m") == "true colour"
    assert clean("a\x1b]0;window title\x07b") == "ab"
    assert clean("a\x1b]2;title ended by ST\x1b\\b") == "ab"
    assert clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean("\x1bP1$r0m\x1b\\dcs") == "dcs"
    assert clean("a\x1bcb") == "ab"
    assert clean("clear \x1b[2J\x1b[Hscreen") == "clear screen"
    assert clean("unterminated \x1b]0;title") == "unterminated "
    assert clean("stray \x1b]0;osc\nnext line kept") == "stray \nnext line kept"
    assert clean("c1 csi \x9b31mred") == "c1 csi red"
    assert clean("mis-decoded \x9dcp1252 keeps its text") == "mis-decoded cp1252 keeps its text"


def test_bidi_controls_invisible_characters_and_surrogates() -> None:
    assert clean("invoice\u202efdp.exe") == "invoicefdp.exe"
    assert clean("\u061carabic letter mark") == "arabic letter mark"
    assert clean("zero\u200bwidth\u00adsoft\ufeffbom") == "zerowidthsoftbom"
    assert clean("bad \udcff byte") == "bad \ufffd byte"


def test_joiners_and_variation_selectors_stay() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean(family) == family
    assert clean("\u2764\ufe0f") == "\u2764\ufe0f"
    assert clean("می\u200cخواهم") == "می\u200cخواهم"


def test_line_breaks_are_normalised_and_one_line_flattens_them() -> None:
    assert clean("a\r\nb\rc\u2028d\u2029e\x85f") == "a\nb\nc\nd\ne\nf"
    assert clean("keep\ttabs") == "keep\ttabs"
    assert clean("Re:\r\n\tfolded", one_line=True) == "Re:  folded"
    assert clean(None) == ""
