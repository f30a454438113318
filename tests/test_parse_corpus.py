"""Opt-in: parse every message of a real-mail corpus (TUI_HELPDESK_CORPUS=DIR).

Without the variable this module defines no test at all (nothing is skipped: there is nothing
to run); with it, one test per corpus file.
mbox files are split on "\\nFrom " lines. Every message must parse without an exception, and
where it has a text part with content (checked independently with the stdlib compat32 parser),
the text body must be non-empty and readable (storable, no NUL, mostly no replacement marks).
A TNEF part (winmail.dat, found with the stdlib too) is either read, so its bytes are no longer an
attachment and its files are, or kept byte for byte; a `tnef-error` defect means it was kept.
"""

from __future__ import annotations

import os
import re
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest
from conftest import CORPUS_ENV

from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.mail.parsed import ParsedMessage

SKIP_NAMES = {"README.md", "PROVENANCE.tsv"}
_MBOX_SPLIT = re.compile(rb"\n(?=From )")
TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
_MARKUP = re.compile(rb"<[^>]*>|&nbsp;|\s")


def split_mbox(data: bytes) -> list[bytes]:
    """One message per mbox entry (the "From " envelope line dropped); a plain file is one."""
    if not data.startswith(b"From "):
        return [data]
    return [chunk.partition(b"\n")[2] for chunk in _MBOX_SPLIT.split(data)]


def corpus_files(root: str) -> list[Path]:
    base = Path(root)
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_file" in metafunc.fixturenames:
        root = os.environ.get(CORPUS_ENV, "")
        files = corpus_files(root) if root else []
        if root and not files:
            raise pytest.UsageError(f"{CORPUS_ENV}={root}: no mail files there")
        ids = [str(p.relative_to(root)) for p in files]
        metafunc.parametrize("corpus_file", files, ids=ids)


def has_text_part(raw: bytes) -> bool:
    """Independent check: a non-attachment text/plain or text/html leaf with visible content."""
    for part in message_from_bytes(raw, policy=email_policy.compat32).walk():
        if part.is_multipart() or part.get_content_type() not in ("text/plain", "text/html"):
            continue
        if str(part.get("content-disposition", "")).lower().startswith("attachment"):
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and _MARKUP.sub(b"", data):
            return True
    return False


def tnef_parts(raw: bytes) -> list[bytes]:
    """Independent check: the decoded bytes of every application/ms-tnef or winmail.dat part."""
    found = []
    for part in message_from_bytes(raw, policy=email_policy.compat32).walk():
        named = str(part.get_filename() or "").lower() == "winmail.dat"
        if part.get_content_type() in TNEF_TYPES or named:
            data = part.get_payload(decode=True)
            found.append(data if isinstance(data, bytes) else b"")
    return found


def check_tnef(raw: bytes, parsed: ParsedMessage) -> None:
    if any(d.startswith("tnef-error:") for d in parsed.defects):
        kept = [a.data for a in parsed.attachments]
        assert any(data in kept for data in tnef_parts(raw)), "unreadable TNEF must stay as sent"


def check_corpus_file(corpus_file: Path) -> None:
    for raw in split_mbox(corpus_file.read_bytes()):
        parsed = parse_message(raw)
        assert parsed.size == len(raw)
        body = parsed.text_body
        assert "\x00" not in body
        body.encode("utf-8")
        check_tnef(raw, parsed)
        if has_text_part(raw):
            assert body.strip(), f"no text body in {corpus_file}"
            assert body.count("\ufffd") <= max(3, len(body) // 50), "unreadable text body"


if os.environ.get(CORPUS_ENV):
    test_corpus_file_parses = pytest.mark.corpus(check_corpus_file)
