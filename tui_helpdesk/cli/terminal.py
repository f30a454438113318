"""The terminal over SSH (textual#4816, #1022, #3992): escape delay, colours, animations.

Textual reads ESCDELAY, TEXTUAL_COLOR_SYSTEM and TEXTUAL_ANIMATIONS once, when it is imported,
so the CLI sets them before it imports the TUI. Over SSH:

- Escape answers after `tui.ssh_escape_delay_ms` (Textual waits 100 ms to tell the Escape key
  from the start of an arrow key's sequence, which arrives in one packet over SSH);
- the colour system is `tui.ssh_color_system`; `auto` means truecolor when COLORTERM says so
  (ssh forwards it only with SendEnv/AcceptEnv), 16 colours on a Linux console or a dumb
  terminal, else 256 colours: nearly every SSH client has them, and the 16 Textual falls back
  to for TERM=xterm make every theme dark (textual#1022);
- animations are `tui.ssh_animations` (none: no frames to send over the network).

A value the session already has in its environment wins: whoever set it meant it.
"""

from __future__ import annotations

from collections.abc import Mapping

from tui_helpdesk.config import TuiSettings

SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")
FEW_COLOURS = ("linux", "dumb", "vt100", "vt220", "ansi")


def over_ssh(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in SSH_VARIABLES)


def color_system(setting: str, environ: Mapping[str, str]) -> str:
    if setting != "auto":
        return setting
    if environ.get("COLORTERM", "").lower() in {"truecolor", "24bit"}:
        return "truecolor"
    if environ.get("TERM", "dumb").lower() in FEW_COLOURS:
        return "standard"
    return "256"


def ssh_environment(tui: TuiSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to the environment before Textual is imported, for an SSH session."""
    wanted = {
        "ESCDELAY": str(tui.ssh_escape_delay_ms),
        "TEXTUAL_COLOR_SYSTEM": color_system(tui.ssh_color_system, environ),
        "TEXTUAL_ANIMATIONS": tui.ssh_animations,
    }
    return {name: value for name, value in wanted.items() if name not in environ}
