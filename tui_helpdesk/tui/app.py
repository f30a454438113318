"""The Textual app: builds its data access from settings, shows the inbox, refreshes live."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from tui_helpdesk.config import Settings
from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.terminal_text import clean
from tui_helpdesk.tui.commands import HelpdeskCommands, PaletteCommand
from tui_helpdesk.tui.data import HelpdeskData
from tui_helpdesk.tui.host import Clock
from tui_helpdesk.tui.keymap import load_keymap
from tui_helpdesk.tui.messages import Connected, DataChanged, InboxLoaded
from tui_helpdesk.tui.modals.help import HelpScreen
from tui_helpdesk.tui.refresh import GROUP as POLL_GROUP
from tui_helpdesk.tui.refresh import ChangePoller
from tui_helpdesk.tui.screens.inbox import InboxScreen

if TYPE_CHECKING:
    from tui_helpdesk.start_cache import Who
    from tui_helpdesk.tui.start_ahead import Ahead


# How long the connecting thread waits for the first rows to be drawn before it starts the
# embedded worker and writes the start-up cache anyway (a list that failed to load, say).
FIRST_ROWS_WAIT_SECONDS = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class HelpdeskApp(App[int]):
    """Keyboard-driven shared inbox. `data` is the only way to the database."""

    TITLE = "tui-helpdesk"
    CSS_PATH = [
        "styles/app.tcss",
        "styles/inbox.tcss",
        "styles/conversation.tcss",
        "styles/help.tcss",
        "styles/dialogs.tcss",
    ]
    COMMANDS = App.COMMANDS | {HelpdeskCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave tui-helpdesk"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help",
                tooltip="Show the keys of this screen"),
        Binding("f2", "admin", "Admin", id="app.admin", show=False,
                tooltip="Admin screens: mailboxes, domains, queues, team, stats, audit, workers"),
        Binding("f3", "availability", "Availability", id="app.availability", show=False,
                tooltip="Your availability, one step: available → away → offline"),
    ]  # fmt: skip

    def __init__(
        self,
        data: HelpdeskData,
        *,
        worker_address: tuple[str, int] | None = None,
        start_worker: Callable[[], tuple[str, int]] | None = None,
        now: Clock = utc_now,
    ) -> None:
        super().__init__()
        self.data = data
        self.worker_address = worker_address
        # The embedded worker, started after the first frame (see _connect).
        self._start_worker = start_worker
        self.refusal: HelpdeskError | None = None  # why the app ended before it could start
        self.now = now
        self._after_connect: list[Callable[[], None]] = []
        self._first_frame = threading.Event()  # the first frame is on screen
        self._rows_drawn = threading.Event()  # the inbox's first rows are on screen
        self.poller = ChangePoller(self, data.watcher, data.settings.tui.refresh_interval_seconds)

    def on_mount(self) -> None:
        keymap, problems = load_keymap(self.data.settings.tui.keymap_path)
        if keymap:
            self.set_keymap(keymap)
        for problem in problems:
            self.notify(clean(problem), title="Keymap", severity="warning", markup=False)
        self.push_screen(InboxScreen())
        # Off the event loop, at once: the start-up cache is read beside the first frame (its
        # driver waits on the disk or the network, not on the interpreter); the database
        # layer is imported after that frame.
        self.call_after_refresh(self._first_frame.set)
        self._connect()

    @work(thread=True, exclusive=True, exit_on_error=False, group="connect")
    def _connect(self) -> None:
        """Import the services, open the database, resolve the acting user, then start the
        embedded worker. A refused or unknown user, or a worker that cannot listen, ends the
        app with the exit code the CLI gives that error; run_tui then raises it, so the CLI
        reports it as it reports every error.

        With a start-up cache the screens first show who acts and the first rows, read
        without the database layer (HelpdeskData.quick_start); `connect` waits until they
        are drawn, and the screens read everything again once it is done. The worker starts,
        and the cache is written, once the first rows are on screen."""
        try:
            if self.data.writing_ahead:  # its rows are a while off: the screen is drawn first
                self._first_frame.wait(FIRST_ROWS_WAIT_SECONDS)
            if self.data.quick_start():
                self.call_from_thread(self._tell_screens, Connected)
            self._first_frame.wait(FIRST_ROWS_WAIT_SECONDS)
            self.data.connect()
            self.post_message(Connected())
            self._rows_drawn.wait(FIRST_ROWS_WAIT_SECONDS)
            if self._start_worker is not None:
                address = self._start_worker()
                self.call_from_thread(self._worker_started, address)
            self.data.remember_start()
        except HelpdeskError as error:
            self.refusal = error
            self.call_from_thread(self.exit, None, error.exit_code)

    def on_inbox_loaded(self, _message: InboxLoaded) -> None:
        """The inbox's rows (bubbled up from its screen): what waits for them goes on once
        they are drawn."""
        if not self._rows_drawn.is_set():
            self.call_after_refresh(self._first_rows_drawn)

    def _first_rows_drawn(self) -> None:
        self._rows_drawn.set()
        self.data.first_rows_drawn()

    @property
    def worker_expected(self) -> bool:
        """An embedded worker runs, or is starting."""
        return self.worker_address is not None or self._start_worker is not None

    def _worker_started(self, address: tuple[str, int]) -> None:
        self.worker_address = address
        for screen in self.screen_stack:
            if isinstance(screen, InboxScreen):
                screen.worker_started()

    def on_connected(self, _message: Connected) -> None:
        self.poller.start()
        for action in self._after_connect:
            action()
        self._after_connect.clear()
        self._tell_screens(Connected)

    def _tell_screens(self, message: type[Connected] | type[DataChanged]) -> None:
        """Every screen on the stack that handles `message` gets one of its own.

        Textual's own default screen under ours is left alone: a message to it marks it for
        a repaint, which redraws the whole terminal over an SSH link for nothing."""
        handler = "on_connected" if message is Connected else "on_data_changed"
        for screen in self.screen_stack:
            if hasattr(screen, handler):
                screen.post_message(message())

    def on_unmount(self) -> None:
        self.poller.stop()
        self.data.close()

    def open_conversation(self, conversation_id: int) -> None:
        # Imported at the first use: what the first inbox frame does not need waits.
        from tui_helpdesk.tui.screens.conversation import ConversationScreen

        self.push_screen(ConversationScreen(conversation_id))

    def on_data_changed(self, _message: DataChanged) -> None:
        """Every screen on the stack that shows data reloads it (the inbox under a thread too)."""
        self._tell_screens(DataChanged)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place background failures are shown; also re-arms the change poll."""
        self.poller.on_worker_finished(event.worker)
        if event.state == WorkerState.ERROR and event.worker.group != POLL_GROUP:
            error = event.worker.error
            self.notify(
                clean(f"{type(error).__name__}: {error}"), title="Background task failed",
                severity="error", markup=False,
            )  # fmt: skip

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("app: help", "Show the keys of this screen", self.action_help),
            PaletteCommand("app: quit", "Leave tui-helpdesk", self.action_quit),
            *(_admin_menu().palette_commands(self) if self.data.connected else []),
        ]

    def action_admin(self) -> None:
        if self._when_connected(self.action_admin):
            _admin_menu().open_menu(self)

    def action_availability(self) -> None:
        from tui_helpdesk.tui.screens.admin.team import cycle_availability

        if self._when_connected(self.action_availability):
            cycle_availability(self)

    def _when_connected(self, action: Callable[[], None]) -> bool:
        """True when the acting user is known; else `action` runs again once they are (a key
        pressed during the first half second is not lost)."""
        if not self.data.connected:
            self._after_connect.append(action)
        return self.data.connected

    def action_help(self) -> None:
        """Every binding of the screen (and of the focused widget), one row per binding id
        with all its keys, as the keymap left them."""
        if isinstance(self.screen, HelpScreen):
            return
        keys: dict[str, list[str]] = {}
        about: dict[str, tuple[str, str]] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            # Our own bindings all carry an id; Textual's inherited ones (focus, copy) do not.
            if binding.id is None or binding.system:
                continue
            shown = self.get_key_display(binding)
            if shown not in keys.setdefault(binding.id, []):
                keys[binding.id].append(shown)
            description = binding.description or binding.action.replace("_", " ")
            about[binding.id] = (description, binding.tooltip)
        rows = [(" ".join(keys[ident]), *about[ident]) for ident in keys]
        self.push_screen(HelpScreen(rows))


def _admin_menu() -> ModuleType:
    """The admin screens, imported when first asked for (not before the first inbox frame)."""
    from tui_helpdesk.tui.screens.admin import menu

    return menu


def make_app(
    settings: Settings,
    actor_email: str | None,
    *,
    resolve: Callable[[], str] | None = None,
    worker_address: tuple[str, int] | None = None,
    start_worker: Callable[[], tuple[str, int]] | None = None,
    now: Clock | None = None,
    start_cache: Path | None = None,
    who: Who | None = None,
    ahead: Ahead | None = None,
) -> HelpdeskApp:
    """Build the app on the database of `settings`, acting as `actor_email` (or as whom
    `resolve` finds, in the connecting thread; `who` says how, when the start-up cache in
    the folder `start_cache` may look them up the same way, and `ahead` is the process
    writing that cache when there was none: see HelpdeskData).

    Nothing is read here: the app connects after its first frame, and exits with the error's
    exit code (the error in `app.refusal`) when the user is unknown or refused.
    """
    data = HelpdeskData(
        settings, actor_email, resolve=resolve, start_cache=start_cache, who=who, ahead=ahead
    )
    return HelpdeskApp(
        data, worker_address=worker_address, start_worker=start_worker, now=now or utc_now
    )


def run_tui(
    settings: Settings,
    *,
    resolve: Callable[[], str],
    start_worker: Callable[[], tuple[str, int]] | None = None,
    start_cache: Path | None = None,
    who: Who | None = None,
    ahead: Ahead | None = None,
) -> int:
    """Run the TUI in this terminal until the user quits; returns the exit code.

    The first frame comes before anything heavy: `resolve` (who acts) and `start_worker`
    (the embedded SMTP worker) run in a thread after it; with a start-up cache the first rows
    come before them too.
    """
    app = make_app(
        settings, None, resolve=resolve, start_worker=start_worker, start_cache=start_cache,
        who=who, ahead=ahead,
    )  # fmt: skip
    app.run()
    if app.refusal is not None:
        raise app.refusal
    return app.return_code or 0
