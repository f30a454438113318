"""What screens may ask of the app, as a protocol: screens never import the app module.

The app (tui/app.py) imports the screens to push them; a screen that imported the app back
would make a cycle. A screen reaches the app through `host(self)` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, cast

from textual.dom import DOMNode

from tui_helpdesk.tui.data import HelpdeskData

Clock = Callable[[], datetime]


class Helpdesk(Protocol):
    """The running app as screens see it: its data access, clock and navigation."""

    data: HelpdeskData
    worker_address: tuple[str, int] | None
    now: Clock

    @property
    def worker_expected(self) -> bool: ...  # an embedded worker runs or is starting

    def open_conversation(self, conversation_id: int) -> None: ...


def host(node: DOMNode) -> Helpdesk:
    """The app a widget or screen runs in, typed as the Helpdesk protocol."""
    return cast(Helpdesk, node.app)
