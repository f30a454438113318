"""Live refresh (F48): poll the ChangeWatcher in a thread on a timer that re-arms when done.

A poll never overlaps the next one (the timer is armed only after a poll finishes), so a slow
database cannot pile up threads; a change posts DataChanged, which collapses in bursts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.app import App
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from tui_helpdesk.tui.messages import DataChanged

if TYPE_CHECKING:
    from tui_helpdesk.services.changes import ChangeWatcher

GROUP = "change-poll"


class ChangePoller:
    def __init__(
        self, app: App[object], make_watcher: Callable[[], ChangeWatcher], interval: float
    ) -> None:
        self._app = app
        self._make_watcher = make_watcher
        self._interval = max(0.05, interval)
        self._watcher: ChangeWatcher | None = None
        self._lock = threading.Lock()
        self._timer: Timer | None = None
        self._stopped = False
        self.polls = 0  # polls started so far (numbered 1, 2, ...): tests count, not time
        self.change_seen_at = 0  # the number of the poll that last reported a change

    def start(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if not self._stopped:
            self._timer = self._app.set_timer(self._interval, self._tick, name="change-poll")

    def _tick(self) -> None:
        if not self._stopped:
            self._app.run_worker(self._poll, thread=True, group=GROUP, exit_on_error=False)

    def _poll(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.polls += 1
            if self._watcher is None:
                # The first watcher was made before the screens' first reads (HelpdeskData),
                # so its first poll reports exactly what was committed since: no extra reload.
                self._watcher = self._make_watcher()
            changed = self._watcher.poll()
            if changed:
                self.change_seen_at = self.polls
        if changed:
            self._app.post_message(DataChanged())

    def on_worker_finished(self, worker: Worker[object]) -> None:
        """Called by the app for every finished worker; re-arms after our own."""
        if worker.group == GROUP and worker.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._arm()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.stop()
        with self._lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
