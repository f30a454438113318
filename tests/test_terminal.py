"""SSH comfort (textual#4816, #1022, #3992): what an SSH session sets before Textual loads."""

from __future__ import annotations

import pytest

from tui_helpdesk.cli.terminal import color_system, over_ssh, ssh_environment
from tui_helpdesk.config import load_settings
from tui_helpdesk.errors import ConfigError


def test_ssh_is_recognised_by_the_variables_sshd_sets() -> None:
    assert over_ssh({"SSH_CONNECTION": "127.0.0.1 50000 127.0.0.1 22"})
    assert over_ssh({"SSH_TTY": "/dev/pts/3"})
    assert not over_ssh({"TERM": "xterm-256color", "SSH_TTY": ""})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TERM": "xterm-256color", "COLORTERM": "truecolor"}, "truecolor"),
        ({"TERM": "xterm", "COLORTERM": "24bit"}, "truecolor"),
        ({"TERM": "xterm"}, "256"),  # COLORTERM stays behind; 16 colours look dark (#1022)
        ({"TERM": "screen-256color"}, "256"),
        ({"TERM": "linux"}, "standard"),
        ({}, "standard"),
    ],
)
def test_auto_colour_system(environ: dict[str, str], expected: str) -> None:
    assert color_system("auto", environ) == expected
    assert color_system("truecolor", environ) == "truecolor"  # a setting is obeyed


def test_settings_become_textual_variables_unless_the_session_set_them() -> None:
    tui = load_settings(environ={}).tui
    assert ssh_environment(tui, {"TERM": "xterm-256color"}) == {
        "ESCDELAY": "50", "TEXTUAL_COLOR_SYSTEM": "256", "TEXTUAL_ANIMATIONS": "none",
    }  # fmt: skip
    tuned = load_settings(environ={
        "TUI_HELPDESK_TUI_SSH_ESCAPE_DELAY_MS": "200", "TUI_HELPDESK_TUI_SSH_ANIMATIONS": "basic",
        "TUI_HELPDESK_TUI_SSH_COLOR_SYSTEM": "truecolor",
    }).tui  # fmt: skip
    assert ssh_environment(tuned, {"ESCDELAY": "25"}) == {
        "TEXTUAL_COLOR_SYSTEM": "truecolor", "TEXTUAL_ANIMATIONS": "basic",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("SSH_COLOR_SYSTEM", "millions", "tui.ssh_color_system must be one of"),
        ("SSH_ANIMATIONS", "some", "tui.ssh_animations must be one of"),
        ("SSH_ESCAPE_DELAY_MS", "0", "tui.ssh_escape_delay_ms must be at least 1"),
    ],
)
def test_bad_ssh_settings_are_named(key: str, value: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        load_settings(environ={f"TUI_HELPDESK_TUI_{key}": value})
