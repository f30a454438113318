"""What passes between the SMTP handler, a writer and the store: mail in, outcomes out.

Shared by both writers (thread_writer, process_writer) and the store process, so none of them
imports another for these types. The mail itself is mail.inbound.InboundMail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tui_helpdesk.mail.inbound import InboundMail


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the store says about one mail of a committed batch."""

    queue_id: str
    processing_error: str = ""


# store(batch) stores every mail of the batch in ONE transaction and commits it. It returns one
# entry per mail: Accepted, or the exception that kept that mail out (answered 451). Raising
# means the commit failed and the whole batch is answered 451.
StoreBatch = Callable[[Sequence[InboundMail]], Sequence["Accepted | BaseException"]]


class Writer(Protocol):
    """What the SMTP handler needs from a writer."""

    def submit(self, mail: InboundMail) -> asyncio.Future[Accepted]: ...


@dataclass
class WriterStats:
    """Counters for the worker-status row (F76); written by the writer thread only."""

    accepted: int = 0
    errors: int = 0
    batches: int = 0
    last_accepted_at: datetime | None = None
    last_error: str = ""


def count_outcomes(stats: WriterStats, outcomes: Sequence[Accepted | BaseException]) -> None:
    """Add one batch's outcomes to the counters of the worker-status row."""
    stats.batches += 1
    now = datetime.now(UTC)
    for outcome in outcomes:
        if isinstance(outcome, Accepted):
            stats.accepted += 1
            stats.last_accepted_at = now
            if outcome.processing_error:
                stats.errors += 1
                stats.last_error = outcome.processing_error
        else:
            stats.errors += 1
            stats.last_error = f"{type(outcome).__name__}: {outcome}"


def settle(future: asyncio.Future[Accepted], outcome: Any) -> None:
    """Resolve a sender's future with an outcome, unless the session already went away."""
    if future.done():  # the session went away while we were committing
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
