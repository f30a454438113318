"""safe_text: mail text shown in the TUI as literal Rich Text, cleaned by terminal_text.clean."""

from __future__ import annotations

from tui_helpdesk.tui.widgets.safe_text import safe_text


def test_markup_is_kept_literally() -> None:
    text = safe_text("[bold red]x[/] [link=http://evil]y[/link]")
    assert text.plain == "[bold red]x[/] [link=http://evil]y[/link]"
    assert not text.spans


def test_text_is_cleaned_by_the_shared_rule() -> None:
    assert safe_text("\x1b[31mred\x1b[0m \u061c\u202eok\n\tnext").plain == "red ok\n\tnext"


def test_one_line_fields_read_as_one_line() -> None:
    assert safe_text("  Re:\r\n\tfolded   subject ", one_line=True).plain == "Re: folded subject"
