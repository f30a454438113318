"""A real `tui-helpdesk` start, headless: what was imported when the first inbox rows were drawn.

    python tests/tui_start_probe.py REPORT CACHE_FOLDER ARGS...

Runs the CLI in this process with ARGS (as `tui-helpdesk ARGS` does), the app headless at
120x36; quits once the app is connected and the start-up cache is in CACHE_FOLDER (or when the
app ends by itself), and writes REPORT (JSON): for the first rows drawn, the seconds (wall and
CPU) since this process started, whether they came from the cache, and whether SQLAlchemy was
imported (`connect` waits for those rows as long as it takes, not a second: see
DRAW_WAIT_SECONDS).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


class FirstImport:
    """Remembers where SQLAlchemy was first imported from (for a test that failed to say)."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report

    def find_spec(self, name: str, *_args: Any) -> None:
        if name == "sqlalchemy" and "sqlalchemy_imported_by" not in self.report:
            where = traceback.extract_stack()[:-1]
            inside = [f"{frame.filename}:{frame.lineno}" for frame in where
                      if "tui_helpdesk" in frame.filename]  # fmt: skip
            self.report["sqlalchemy_imported_by"] = inside[-3:]
        return None


def main(report_path: Path, cache: Path, args: list[str]) -> None:
    report: dict[str, Any] = {"sqlalchemy_before_the_cli": "sqlalchemy" in sys.modules}
    sys.meta_path.insert(0, FirstImport(report))  # type: ignore[arg-type]
    from textual.app import App

    from tui_helpdesk.tui import data
    from tui_helpdesk.tui.data import HelpdeskData

    # The database layer is imported after a second anyway, drawn or not: on a busy machine
    # that would be the only import seen, not one that should not be there.
    data.DRAW_WAIT_SECONDS = 60
    drawn = HelpdeskData.first_rows_drawn

    def first_rows_drawn(data: HelpdeskData) -> None:
        report.setdefault("first_rows", {
            "seconds": time.perf_counter() - STARTED, "cpu_seconds": time.process_time(),
            "from_cache": data.started_from_cache,
            "sqlalchemy": "sqlalchemy" in sys.modules,
        })  # fmt: skip
        drawn(data)

    def headless(app: Any, **_options: Any) -> Any:
        async def until_started(pilot: Any) -> None:
            deadline = time.monotonic() + 60
            while app.return_code is None and time.monotonic() < deadline:
                if app.data.connected and any(cache.glob("tui-helpdesk/start-*.json")):
                    break
                await asyncio.sleep(0.02)
            if app.return_code is None:
                await pilot.exit(None)

        return run(app, headless=True, size=(120, 36), auto_pilot=until_started)

    HelpdeskData.first_rows_drawn = first_rows_drawn  # type: ignore[method-assign]
    run = App.run
    App.run = headless  # type: ignore[method-assign]
    from tui_helpdesk.cli import cli

    try:
        cli.main(args=args, prog_name="tui-helpdesk")
    finally:
        report_path.write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
