"""The search indexer (PostgreSQL): fills the search vectors of new messages after their commit.

A thread of every worker (headless and embedded). Each round it waits while mail is coming
in (a burst is indexed after it, or once a row has waited `LONGEST_SECONDS`), then fills up
to services.search.indexer.BATCH vectors in one short transaction, again at once while rows
remain, else after `POLL_SECONDS`. Search is right meanwhile (rows without a vector are
matched by computing it), only slower. On SQLite it does not start: FTS5 is kept by triggers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database, is_sqlite
from tui_helpdesk.services.search import indexer

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
QUIET_SECONDS = 2.0  # mail stored this recently: a burst is on, wait
LONGEST_SECONDS = 30.0  # … unless a row has waited this long


def utc_now() -> datetime:
    return datetime.now(UTC)


class SearchIndexer:
    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.indexed = 0
        self.db: Database | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        db = self.settings.database
        if is_sqlite(db.url) or self._thread is not None:
            return
        self.db = Database(db.url, busy_timeout_ms=db.busy_timeout_ms)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="search-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop after the current batch (its transaction is short) and wait at most `timeout`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
            self._thread = None
            if self.db is not None and not alive:
                self.db.dispose()

    def run_once(self, *, yielding: bool = True) -> int:
        """One batch, unless a burst of mail is on (`yielding`); how many vectors were filled."""
        if self.db is None:
            db = self.settings.database
            self.db = Database(db.url, busy_timeout_ms=db.busy_timeout_ms)
        if yielding:
            with self.db.read() as session:
                if indexer.mail_arriving(
                    session, self.clock(), quiet=QUIET_SECONDS, longest=LONGEST_SECONDS
                ):
                    return 0
        with self.db.write() as session:
            done = indexer.index_pending(session)
        self.indexed += done
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("search indexing failed; trying again")
                done = 0
            if done < indexer.BATCH:
                self._stop.wait(POLL_SECONDS)
