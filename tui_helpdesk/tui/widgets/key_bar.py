"""A footer of one widget: the keys that matter now, as one line of text.

Textual's Footer mounts a widget per key and recomposes them all whenever the bindings change
(each focus change): ~40 widgets styled again, most of the ~420 ms a 50-message thread took to
open. This draws the same "key description" pairs as one Text, redrawn when the screen's
bindings change. Mouse users click nothing here: every key is also in the palette (ctrl+p).
"""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static


class KeyBar(Static):
    COMPONENT_CLASSES = {"key-bar--key"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    KeyBar > .key-bar--key {
        color: $footer-key-foreground;
        text-style: bold;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._show()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            self._show()

    def _show(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        key_style = self.get_component_rich_style("key-bar--key")
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show or not active.enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            line.append(f" {self.app.get_key_display(binding)}", style=key_style)
            line.append(f" {binding.description} ")
        line.append(" ^p palette", style="dim")
        self.update(line)
