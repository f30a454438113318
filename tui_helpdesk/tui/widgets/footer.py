"""The key bar: the keys that matter now, on one line, drawn as one widget.

Textual's Footer makes a widget per key and re-composes them all on every bindings change
(start-up, focus moves, a first highlighted row): ~10 ms each time, paid again for every key
whose `compact` style it sets. This bar renders one line of text instead, rebuilt at most
once per refresh however many changes come; disabled actions are dimmed, keys follow the
user's keymap (App.get_key_display).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget):
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
    KeyBar > .key-bar--description {
        color: $footer-description-foreground;
    }
    KeyBar > .key-bar--disabled {
        color: $text-disabled;
    }
    """

    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--disabled"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._line = Text()
        self._pending = False

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Screen[object]) -> None:
        if not self._pending:
            self._pending = True
            self.call_after_refresh(self._rebuild)

    def _rebuild(self) -> None:
        self._pending = False
        try:
            key_style = self.get_component_rich_style("key-bar--key")
            description_style = self.get_component_rich_style("key-bar--description")
            disabled_style = self.get_component_rich_style("key-bar--disabled")
        except KeyError:  # no component styles (mounting, or its screen closing): skip this draw
            return
        line = Text(no_wrap=True, overflow="crop", end="")
        seen: set[str] = set()
        palette = None
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.action == "app.command_palette" or binding.action == "command_palette":
                palette = binding
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            keys, what = (key_style, description_style) if enabled else (disabled_style,) * 2
            line.append(f" {self.app.get_key_display(binding)}", keys)
            line.append(f" {binding.description} ", what)
        if palette is not None:
            hint = Text(no_wrap=True, end="")
            hint.append(f" {self.app.get_key_display(palette)}", key_style)
            hint.append(" palette ", description_style)
            room = self.size.width - line.cell_len - hint.cell_len
            line.append(" " * max(1, room))
            line.append_text(hint)
        self._line = line
        self.refresh()

    def on_resize(self) -> None:
        self._bindings_changed(self.screen)

    def render(self) -> RenderResult:
        return self._line
