"""tui-helpdesk: a keyboard-driven shared-inbox email helpdesk in the terminal."""

__version__ = "0.1.0"
