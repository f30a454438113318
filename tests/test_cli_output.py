"""CLI tables line up in terminal cells, whatever script a subject is written in."""

from __future__ import annotations

from rich.cells import cell_len

from tui_helpdesk.cli.output import fmt, key_values, table


def test_columns_align_with_wide_characters_and_controls_are_dropped() -> None:
    text = table(
        ["id", "subject", "contact"], [[1, "エクスポート", "a@x"], [2, "plain\x1b[31m", "b@x"]]
    )
    lines = text.splitlines()
    starts = {cell_len(line[: line.index("@") - 1]) for line in lines[1:]}
    assert len(starts) == 1
    assert "\x1b" not in text


def test_cells_and_values_are_cleaned_on_one_line() -> None:
    subject = "\x1b[31mUrgent\x1b[0m\u061c \u202eexe.pdf\r\nsecond\tline \x1b]0;pwned\x07"
    assert fmt(subject) == "Urgent exe.pdf second line "
    text = table(["subject"], [[subject]])
    assert text.splitlines()[1] == "Urgent exe.pdf second line"
    assert key_values([("subject", subject)]) == "subject: Urgent exe.pdf second line "
