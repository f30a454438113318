"""Send a folder of real mail through the worker and check every message was kept intact.

    python bench/corpus.py ../shared/mail-corpus              # starts a worker on a temp SQLite
    python bench/corpus.py DIR --port 2525 --rcpt ALIAS --db URL   # a worker already running

Every file under DIR is one message, or an mbox (first line "From ...") split on its From_
lines. The bytes are sent as they are (dot-stuffed by the client; SMTP ends DATA with CRLF, so a
message that does not end with one gets it, which is what "sent" means below). Per source folder
(first level under DIR) it prints: sent, accepted (250), stored, raw identical (sha256 of the
stored raw == sha256 of what was sent), with defects, errors (non-250 replies plus messages stored
with a processing error), empty text (the message has a non-empty text/plain or text/html
part by the stdlib's lenient parser, yet the stored text body is empty). The stored row is
found through the message ids in the worker's "250 ... queued as ID" reply, else by the sha256
of the bytes. The corpus is only read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

from harness import prepare_helpdesk, start_worker, table
from loadgen import Outcome, Outgoing, as_sent, new_loop, run_load
from sqlalchemy import create_engine, text

from tui_helpdesk.db.engine import normalise_url

SKIP_NAMES = {"README.md", "PROVENANCE.tsv"}
FROM_LINE = re.compile(rb"From \S*.*\d\d:\d\d(:\d\d)?.*\d{4}\s*$")
QUEUED_AS = re.compile(r"queued as ([\d,]+)")


@dataclass(frozen=True)
class CorpusMessage:
    key: str  # "relative/path" or "relative/path#n" for the n-th message of an mbox
    folder: str
    raw: bytes

    @property
    def sent(self) -> bytes:
        return as_sent(self.raw)

    @property
    def has_text(self) -> bool:
        """Whether a reader would find text: a non-empty text/plain or text/html body part.

        Judged with the stdlib's most lenient parser (compat32), independently of ours.
        """
        try:
            message = message_from_bytes(self.raw, policy=email_policy.compat32)
            return any(_part_text(part) for part in message.walk())
        except Exception:
            return False


@dataclass
class Result:
    message: CorpusMessage
    outcome: Outcome | None = None
    stored: bool = False
    identical: bool = False
    defects: bool = False
    processing_error: str = ""
    empty_text: bool = False


@dataclass
class FolderTotals:
    files: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _part_text(part) -> bool:  # type: ignore[no-untyped-def]
    if part.get_content_maintype() != "text" or part.get_content_subtype() not in {"plain", "html"}:
        return False
    if (part.get("Content-Disposition") or "").strip().lower().startswith("attachment"):
        return False
    payload = part.get_payload(decode=True)
    text = payload.decode("latin-1") if isinstance(payload, bytes) else str(payload or "")
    return bool(re.sub(r"<[^>]*>|&nbsp;|\s", "", text))


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox: text between From_ lines, the From_ lines left out."""
    lines = data.splitlines(keepends=True)
    messages: list[list[bytes]] = []
    for line in lines:
        if FROM_LINE.match(line.rstrip(b"\r\n")) and (not messages or _after_blank(messages[-1])):
            messages.append([])
            continue
        if messages:
            messages[-1].append(line)
    out = []
    for index, parts in enumerate(messages):
        body = b"".join(parts)
        if index < len(messages) - 1:  # the blank line before the next From_ is the separator
            body = _drop_separator(body)
        out.append(body)
    return out


def _after_blank(current: list[bytes]) -> bool:
    return not current or current[-1].strip() == b""


def _drop_separator(body: bytes) -> bytes:
    for ending in (b"\r\n", b"\n"):
        if body.endswith(ending * 2):
            return body[: -len(ending)]
    return body


def read_corpus(root: Path) -> Iterator[CorpusMessage]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name in SKIP_NAMES:
            continue
        relative = path.relative_to(root)
        folder = relative.parts[0] if len(relative.parts) > 1 else "."
        data = path.read_bytes()
        first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
        parts = split_mbox(data) if FROM_LINE.match(first_line) else [data]
        for n, raw in enumerate(parts):
            key = str(relative) if len(parts) == 1 else f"{relative}#{n + 1}"
            yield CorpusMessage(key, folder, raw)


async def send_all(
    messages: list[CorpusMessage], port: int, rcpt: str, sessions: int
) -> dict[str, Outcome]:
    outgoing = (Outgoing(m.key, "corpus@sender.test", (rcpt,), m.raw) for m in messages)
    result = await run_load("127.0.0.1", port, outgoing, sessions=sessions)
    return {o.key: o for o in result.outcomes}


def check_stored(db_url: str, results: list[Result]) -> None:
    """Fill in stored/identical/defects/errors/empty text from the database."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            for result in results:
                if result.outcome is None or result.outcome.code != 250:
                    continue
                row = _stored_row(conn, result)
                if row is None:
                    continue
                raw, defects, error, text_length = row
                result.stored = True
                sent_digest = hashlib.sha256(result.message.sent).hexdigest()
                result.identical = hashlib.sha256(bytes(raw or b"")).hexdigest() == sent_digest
                result.defects = bool(_json_list(defects))
                result.processing_error = error or ""
                result.empty_text = not text_length and result.message.has_text
    finally:
        engine.dispose()


def _stored_row(conn, result: Result):  # type: ignore[no-untyped-def]
    columns = "raw, defects, processing_error, length(text_body)"
    assert result.outcome is not None
    queued = QUEUED_AS.search(result.outcome.reply)
    if queued:
        first_id = int(queued.group(1).split(",")[0])
        query = text(f"SELECT {columns} FROM messages WHERE id = :id")
        return conn.execute(query, {"id": first_id}).first()
    digest = hashlib.sha256(result.message.sent).hexdigest()
    query = text(f"SELECT {columns} FROM messages WHERE raw_sha256 = :d ORDER BY id LIMIT 1")
    return conn.execute(query, {"d": digest}).first()


def _json_list(value: object) -> list[object]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return list(value) if isinstance(value, list | tuple) else []


COLUMNS = ["sent", "accepted", "stored", "identical", "defects", "errors", "empty text"]


def tally(results: list[Result]) -> dict[str, FolderTotals]:
    folders: dict[str, FolderTotals] = defaultdict(FolderTotals)
    for r in results:
        totals = folders[r.message.folder]
        totals.files.add(r.message.key.split("#")[0])
        accepted = r.outcome is not None and r.outcome.code == 250
        flags = {
            "sent": True,
            "accepted": accepted,
            "stored": r.stored,
            "identical": r.identical,
            "defects": r.defects,
            "errors": not accepted or bool(r.processing_error),
            "empty text": r.stored and r.empty_text,
        }
        for name, on in flags.items():
            totals.counts[name] += int(on)
    return folders


def render(results: list[Result], show: int, worker_log: Path | None) -> str:
    folders = tally(results)
    rows: list[list[object]] = []
    for name in sorted(folders):
        totals = folders[name]
        rows.append([name, len(totals.files), *(totals.counts[c] for c in COLUMNS)])
    rows.append(["total", sum(len(f.files) for f in folders.values()),
                 *(sum(f.counts[c] for f in folders.values()) for c in COLUMNS)])  # fmt: skip
    out = [table(["folder", "files", *COLUMNS], rows)]
    out += _problems(results, show)
    if worker_log is not None:
        log = worker_log.read_text(errors="replace")
        tracebacks = log.count("Traceback (most recent call last)")
        errors = sum(1 for line in log.splitlines() if " ERROR " in line or "ERROR:" in line)
        out.append(f"\nworker log: {tracebacks} tracebacks, {errors} error lines ({worker_log})")
    return "\n".join(out)


def _problems(results: list[Result], show: int) -> list[str]:
    groups = {
        "not accepted": [
            f"{r.message.key}: {r.outcome.reply if r.outcome else 'not sent'}"
            for r in results
            if r.outcome is None or r.outcome.code != 250
        ],
        "accepted, not found stored": [
            r.message.key for r in results if r.outcome and r.outcome.code == 250 and not r.stored
        ],
        "stored bytes differ": [r.message.key for r in results if r.stored and not r.identical],
        "processing errors": [
            f"{r.message.key}: {r.processing_error[:120]}" for r in results if r.processing_error
        ],
        "text part, but stored text body empty": [
            r.message.key for r in results if r.stored and r.empty_text
        ],
    }
    lines = []
    for title, items in groups.items():
        if items:
            lines.append(f"\n{title} ({len(items)}):")
            lines += [f"  {item}" for item in items[:show]]
            if len(items) > show:
                lines.append(f"  ... {len(items) - show} more (--show N)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--port", type=int, help="a running worker (else one is started)")
    parser.add_argument("--rcpt", help="recipient alias (required with --port)")
    parser.add_argument("--db", help="the running worker's database URL (required with --port)")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--show", type=int, default=15, help="problems listed per kind")
    args = parser.parse_args(argv)
    messages = list(read_corpus(args.dir))
    if not messages:
        raise SystemExit(f"no files under {args.dir}")
    if args.port is not None:
        if not (args.rcpt and args.db):
            raise SystemExit("--port needs --rcpt and --db")
        results = run(messages, args.port, args.rcpt, args.db, args.sessions)
        print(render(results, args.show, None))
        return 0
    with tempfile.TemporaryDirectory(prefix="hd-corpus-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'helpdesk.sqlite3'}"
        rcpt = prepare_helpdesk(db_url)
        worker = start_worker(db_url, Path(tmp))
        try:
            results = run(messages, worker.port, rcpt, db_url, args.sessions)
        finally:
            code = worker.stop()
        print(render(results, args.show, worker.log_path))
        print(f"worker exit status after SIGTERM: {code}")
    return 0


def run(
    messages: list[CorpusMessage], port: int, rcpt: str, db_url: str, sessions: int
) -> list[Result]:
    print(f"sending {len(messages)} messages to 127.0.0.1:{port}", file=sys.stderr)
    outcomes = new_loop().run_until_complete(send_all(messages, port, rcpt, sessions))
    results = [Result(m, outcomes.get(m.key)) for m in messages]
    check_stored(db_url, results)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
