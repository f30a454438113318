"""The newest schema revision this code knows, read from the migration files without Alembic.

Every command checks the database against it; importing Alembic to ask would cost more than
the command itself. tests/test_db.py checks that this agrees with Alembic's own answer.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

VERSIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^revision(?::[^=]*)? = "([^"]+)"', re.M)
_DOWN = re.compile(r'^down_revision(?::[^=]*)? = (?:"([^"]+)"|None)', re.M)


@functools.cache
def known_revisions() -> dict[str, str | None]:
    """Every revision of this code → the one it follows (None for the first)."""
    found: dict[str, str | None] = {}
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            raise RuntimeError(f"{path.name}: no revision / down_revision line")
        found[revision.group(1)] = down.group(1)
    return found


@functools.cache
def head_revision() -> str:
    """The one revision no other revision follows (the migrations form one line)."""
    revisions = known_revisions()
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must form one line, found heads {sorted(heads)}")
    return heads.pop()
