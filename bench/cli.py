"""How fast the command line answers: each command next to a bare `python -c pass`, one run.

    python bench/cli.py [--repeat 15]

An admin's scripts call the CLI hundreds of times, so the start-up of every command counts.
Commands run as subprocesses on a demo database in a temporary folder (SQLite); each figure is
the median wall time of --repeat runs, measured twice: cold (`TUI_HELPDESK_CLI_SERVER=off`,
every import in the command's process) and warm (the default: the launcher hands the command
line to the per-user command server, which forks a child with everything imported; see
tui_helpdesk/launch.py). Targets (issue 7): `--help` within 0.15 s of bare Python, a read
command within 0.35 s. The last row runs a 50-mailbox set-up script (50 `mailbox create`
calls, one process each) and reports its total.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
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


def setup_script(env: dict[str, str], count: int, prefix: str) -> float:
    """Seconds for `count` mailbox creations, each its own process, as a set-up script does."""
    start = time.perf_counter()
    for n in range(count):
        timed([*CLI, "mailbox", "create", "--display-name", f"Team {n}", "--local-part",
               f"{prefix}{n}", "--domain", "acme.test", "--json", *AS], env)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--mailboxes", type=int, default=50, help="set-up script size")
    args = parser.parse_args()
    # Byte-code as an install leaves it (pip compiles a wheel's modules): with
    # PYTHONDONTWRITEBYTECODE set, an edited checkout would recompile every changed module in
    # every cold run.
    package = Path(__file__).resolve().parent.parent / "tui_helpdesk"
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(package)], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        runtime = Path(folder) / "runtime"
        runtime.mkdir(mode=0o700)
        env = dict(os.environ)
        env["TUI_HELPDESK_DATABASE_URL"] = f"sqlite:///{Path(folder) / 'helpdesk.sqlite3'}"
        env["XDG_RUNTIME_DIR"] = str(runtime)  # this run's own command server
        env.pop("TUI_HELPDESK_CONFIG", None)
        env["TUI_HELPDESK_LIMITS_MAILBOXES_PER_ORGANISATION"] = "200"  # demo data has some
        cold = dict(env, TUI_HELPDESK_CLI_SERVER="off")
        warm = dict(env, TUI_HELPDESK_CLI_SERVER="on")
        timed([*CLI, "init", "--demo"], cold)
        _, listing = timed([*CLI, "conversation", "list", "--json", *AS], cold)
        first = json.loads(listing)[0]["id"]
        bare = median([PYTHON, "-c", "pass"], env, args.repeat)
        commands = {
            "--help": [*CLI, "--help"],
            "mailbox list --json": [*CLI, "mailbox", "list", "--json", *AS],
            "conversation list --json": [*CLI, "conversation", "list", "--json", *AS],
            f"conversation show {first} --json": [
                *CLI, "conversation", "show", str(first), "--json", *AS],
        }  # fmt: skip
        timed(commands["mailbox list --json"], warm)  # starts the command server
        wait_for_server(warm)
        rows: list[list[object]] = [["python -c pass", f"{bare:.3f}", "-", "-", "-"]]
        for name, argv in commands.items():
            took_cold = median(argv, cold, args.repeat)
            took_warm = median(argv, warm, args.repeat)
            rows.append([name, f"{took_cold:.3f}", f"{took_cold - bare:+.3f}",
                         f"{took_warm:.3f}", f"{took_warm - bare:+.3f}"])  # fmt: skip
        script_cold = setup_script(cold, args.mailboxes, "cold")
        script_warm = setup_script(warm, args.mailboxes, "warm")
        rows.append([f"set-up script: {args.mailboxes} x mailbox create", f"{script_cold:.2f}",
                     f"{script_cold / args.mailboxes:.3f} each", f"{script_warm:.2f}",
                     f"{script_warm / args.mailboxes:.3f} each"])  # fmt: skip
        subprocess.run([PYTHON, "-m", "tui_helpdesk.warm", "--stop", server_path(warm)],
                       env=warm, capture_output=True, check=False)  # fmt: skip
    print(f"median of {args.repeat} runs; load average {load_average()}")
    print("cold: TUI_HELPDESK_CLI_SERVER=off, every import in the command's own process;")
    print("warm: the default, the command runs in a fork of the per-user command server")
    print(table(["command", "cold s", "cold minus bare", "warm s", "warm minus bare"], rows))


def server_path(env: dict[str, str]) -> str:
    code = "from tui_helpdesk.launch import socket_path; print(socket_path())"
    return subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def wait_for_server(env: dict[str, str]) -> None:
    path = server_path(env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(path)
                return
            except OSError:
                time.sleep(0.05)
    sys.exit(f"no command server came up on {path}")


if __name__ == "__main__":
    main()
