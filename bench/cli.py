"""How fast the command line answers: each command next to a bare `python -c pass`, one run.

    python bench/cli.py [--repeat 15]

An admin's scripts call the CLI hundreds of times, so the start-up of every command counts.
Commands run as subprocesses on a demo database in a temporary folder (SQLite); each figure is
the median wall time of --repeat runs. Targets (issue 7): `--help` within 0.15 s of bare
Python, a read command within 0.35 s. The last row runs a 50-mailbox set-up script (50
`mailbox create` calls, one process each) and reports its total.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import PYTHON, load_average, table

CLI = [PYTHON, "-m", "tui_helpdesk"]
AS = ["--as", "ada@acme.test"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, done.stdout


def median(argv: list[str], env: dict[str, str], repeat: int) -> float:
    timed(argv, env)  # warm the page cache and the .pyc files
    return statistics.median(timed(argv, env)[0] for _ in range(repeat))


def setup_script(env: dict[str, str], count: int) -> float:
    """Seconds for `count` mailbox creations, each its own process, as a set-up script does."""
    start = time.perf_counter()
    for n in range(count):
        timed([*CLI, "mailbox", "create", "--display-name", f"Team {n}", "--local-part",
               f"team{n}", "--domain", "acme.test", "--json", *AS], env)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--mailboxes", type=int, default=50, help="set-up script size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        env = dict(os.environ)
        env["TUI_HELPDESK_DATABASE_URL"] = f"sqlite:///{Path(folder) / 'helpdesk.sqlite3'}"
        env.pop("TUI_HELPDESK_CONFIG", None)
        env["TUI_HELPDESK_LIMITS_MAILBOXES_PER_ORGANISATION"] = "100"  # demo data has some
        timed([*CLI, "init", "--demo"], env)
        _, listing = timed([*CLI, "conversation", "list", "--json", *AS], env)
        first = json.loads(listing)[0]["id"]
        bare = median([PYTHON, "-c", "pass"], env, args.repeat)
        commands = {
            "--help": [*CLI, "--help"],
            "mailbox list --json": [*CLI, "mailbox", "list", "--json", *AS],
            "conversation list --json": [*CLI, "conversation", "list", "--json", *AS],
            f"conversation show {first} --json": [
                *CLI, "conversation", "show", str(first), "--json", *AS],
        }  # fmt: skip
        rows: list[list[object]] = [["python -c pass", f"{bare:.3f}", "-", "1.00"]]
        for name, argv in commands.items():
            took = median(argv, env, args.repeat)
            rows.append([name, f"{took:.3f}", f"{took - bare:+.3f}", f"{took / bare:.2f}"])
        script = setup_script(env, args.mailboxes)
        rows.append([f"set-up script: {args.mailboxes} x mailbox create", f"{script:.2f}",
                     "-", f"{script / args.mailboxes:.3f} s each"])  # fmt: skip
    print(f"median of {args.repeat} runs; load average {load_average()}")
    print(table(["command", "seconds", "minus bare", "ratio to bare"], rows))


if __name__ == "__main__":
    main()
