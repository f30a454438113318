"""The processing budget: no mail may hold the store (F71, F76).

Each mail gets smtp.processing_budget_seconds to be parsed, threaded, routed, assigned and
answered. In the worker's store process, whose main thread does the storing, a timer signal
interrupts the mail wherever it is (a slow step, a loop, a sleep) once the budget is spent.
Elsewhere (the TUI's embedded worker stores in a thread, where no signal can reach) the steps
check the deadline between them instead. Either way the mail goes over as ProcessingTooLong and
is stored raw with TOO_LONG; the rest of its batch and every later mail are stored normally.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

TOO_LONG = "processing took too long"


class ProcessingTooLong(BaseException):
    """The mail went over its budget.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way (the
    parser keeps going after any Exception, as a defect of the mail) can swallow it.
    """

    def __init__(self) -> None:
        super().__init__(TOO_LONG)


class Budget:
    """The deadline of the mail being processed; `limit()` starts one per mail."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = float("inf")

    @contextmanager
    def limit(self) -> Iterator[None]:
        self.deadline = time.monotonic() + self.seconds
        try:
            with _interrupt_after(self.seconds):
                yield
        finally:
            self.deadline = float("inf")

    def check(self) -> None:
        """Between steps: stop this mail if its budget is spent (where no timer can)."""
        if time.monotonic() > self.deadline:
            raise ProcessingTooLong


@contextmanager
def _interrupt_after(seconds: float) -> Iterator[None]:
    """Raise ProcessingTooLong in this thread after `seconds`, if it may take signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:  # once per mail: never again inside the clean-up that follows
            fired = True
            raise ProcessingTooLong

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
