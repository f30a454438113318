"""Our subject token, `[<prefix>#<conversation id>]` (F41): written into the subject of every
mail we send (compose.py), read back from the subjects of replies (services/threading.py).

Only `[` directly before the exact prefix counts: "[HDX#3]" and "[PAGOS-MESI]" are never
tokens of prefix "HD".
"""

from __future__ import annotations

import re
from functools import lru_cache


def subject_token(prefix: str, conversation_id: int) -> str:
    """The token we put in the subjects we send, e.g. "[HD#42]"."""
    return f"[{prefix}#{conversation_id}]"


@lru_cache(maxsize=16)
def token_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"\[" + re.escape(prefix) + r"#(\d{1,18})\]")


def token_ids(subject: str, prefix: str) -> list[int]:
    """Conversation ids named by our tokens in a subject, in order of appearance."""
    seen: list[int] = []
    for match in token_pattern(prefix).finditer(subject):
        value = int(match.group(1))
        if value not in seen:
            seen.append(value)
    return seen


def without_tokens(subject: str, prefix: str) -> str:
    """The subject with every token of ours taken out (spaces closed up)."""
    return " ".join(token_pattern(prefix).sub(" ", subject).split())
