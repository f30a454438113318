"""Kill the worker with SIGKILL under load, 20 times; every 250 must be stored exactly once.

    python bench/crash.py [--cycles 20] [--clients 2] [--sessions 4] [--size 2048] [--pg URL]

Each cycle starts `python -m tui_helpdesk worker` on the same database, starts the SMTP clients
(bench/loadgen.py processes, a new connection per message, each message with its own
Message-ID), kills the worker with SIGKILL at a random moment, waits for the clients to notice,
and then looks every message up by its Message-ID:
  acked       the client got "250" after DATA
  stored      acked messages found in the database
  lost        acked but not stored (must be 0)
  duplicated  stored more than once (must be 0; the clients never resend)
  in doubt    sent, connection lost before the reply, found stored (allowed: SMTP senders
              retry those, and the duplicate check of the worker would then drop the copy)
Exit status 1 when anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import BENCH, PYTHON, Server, pg_schema, prepare_helpdesk, start_worker, table
from sqlalchemy import create_engine, text

from tui_helpdesk.db.engine import normalise_url


@dataclass
class Cycle:
    number: int
    sent: int
    acked: int
    stored: int
    lost: int
    duplicated: int
    in_doubt: int
    killed_after: float


def start_clients(
    args: argparse.Namespace, port: int, rcpt: str, run: str, work: Path
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    clients = []
    for n in range(args.clients):
        acked = work / f"{run}-{n}.acked"
        argv = [
            PYTHON, str(BENCH / "loadgen.py"), "--port", str(port), "--rcpt", rcpt,
            "--sessions", str(args.sessions), "--size", str(args.size), "--run", f"{run}x{n}",
            "--until-refused", "--seconds", str(args.max_cycle_seconds), "--acked-out", str(acked),
        ]  # fmt: skip
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        clients.append((process, acked))
    return clients


def collect(clients: list[tuple[subprocess.Popen[bytes], Path]], timeout: float):
    """(messages sent, set of acked keys) over all clients of the cycle."""
    sent = 0
    acked: set[str] = set()
    for process, path in clients:
        out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-500:]}")
        sent += int(json.loads(out)["sent"])
        if path.exists():
            acked.update(line for line in path.read_text().split() if line)
    return sent, acked


def stored_counts(db_url: str, run: str) -> dict[str, int]:
    """Message key → how many stored messages carry its Message-ID."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT message_id_header, count(*) FROM messages "
                    "WHERE message_id_header LIKE :prefix GROUP BY message_id_header"
                ),
                {"prefix": f"<{run}x%"},
            ).all()
    finally:
        engine.dispose()
    return {header.strip("<>").split("@")[0]: count for header, count in rows}


def run_cycle(args: argparse.Namespace, number: int, db_url: str, rcpt: str, work: Path) -> Cycle:
    run = f"c{number}{uuid.uuid4().hex[:4]}"
    worker: Server = start_worker(db_url, work, name=f"worker-{number}")
    clients = start_clients(args, worker.port, rcpt, run, work)
    delay = random.uniform(args.min_delay, args.max_delay)
    time.sleep(delay)
    worker.kill()
    sent, acked = collect(clients, timeout=args.max_cycle_seconds + 30)
    counts = stored_counts(db_url, run)
    stored = sum(1 for key in acked if counts.get(key, 0) >= 1)
    return Cycle(
        number=number,
        sent=sent,
        acked=len(acked),
        stored=stored,
        lost=len(acked) - stored,
        duplicated=sum(1 for n in counts.values() if n > 1),
        in_doubt=sum(1 for key in counts if key not in acked),
        killed_after=delay,
    )


def report(cycles: list[Cycle]) -> str:
    headers = ["cycle", "killed after s", "sent", "acked", "stored", "lost", "duplicated"]
    headers.append("in doubt")
    rows: list[list[object]] = [
        [c.number, f"{c.killed_after:.2f}", c.sent, c.acked, c.stored, c.lost, c.duplicated,
         c.in_doubt]
        for c in cycles
    ]  # fmt: skip
    totals = [sum(getattr(c, f) for c in cycles) for f in ("sent", "acked", "stored", "lost")]
    dup = sum(c.duplicated for c in cycles)
    doubt = sum(c.in_doubt for c in cycles)
    rows.append(["total", "", *totals, dup, doubt])
    verdict = "zero loss, zero duplicates" if totals[3] == 0 and dup == 0 else "FAILED"
    return table(headers, rows) + f"\n\n{verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--sessions", type=int, default=4, help="SMTP sessions per client")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--min-delay", type=float, default=0.3, help="earliest kill, seconds")
    parser.add_argument("--max-delay", type=float, default=2.5, help="latest kill, seconds")
    parser.add_argument("--max-cycle-seconds", type=float, default=30)
    parser.add_argument("--pg", help="PostgreSQL URL instead of a temporary SQLite file")
    parser.add_argument("--seed", type=int, help="random seed for the kill moments")
    args = parser.parse_args(argv)
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="hd-crash-") as tmp:
        work = Path(tmp)
        if args.pg:
            with pg_schema(args.pg) as db_url:
                cycles = run_all(args, db_url, work)
        else:
            cycles = run_all(args, f"sqlite:///{work / 'helpdesk.sqlite3'}", work)
    print(report(cycles))
    return 0 if all(c.lost == 0 and c.duplicated == 0 for c in cycles) else 1


def run_all(args: argparse.Namespace, db_url: str, work: Path) -> list[Cycle]:
    rcpt = prepare_helpdesk(db_url)
    cycles = []
    for number in range(1, args.cycles + 1):
        cycle = run_cycle(args, number, db_url, rcpt, work)
        print(
            f"cycle {number}: sent {cycle.sent}, acked {cycle.acked}, lost {cycle.lost}, "
            f"duplicated {cycle.duplicated}",
            file=sys.stderr,
        )
        cycles.append(cycle)
    return cycles


if __name__ == "__main__":
    raise SystemExit(main())
