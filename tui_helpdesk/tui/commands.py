"""The command palette: every screen lists its actions as "category: verb" commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    run: Callable[[], Any]


class HelpdeskCommands(Provider):
    """Commands of the screen the palette was opened on, then the app-wide ones."""

    def _commands(self) -> list[PaletteCommand]:
        found: list[PaletteCommand] = []
        for source in (self.screen, self.app):
            listing = getattr(source, "commands", None)
            if callable(listing):
                found.extend(listing())
        return found

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.name, partial(command.run), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.name),
                    partial(command.run),
                    text=command.name,
                    help=command.help,
                )
