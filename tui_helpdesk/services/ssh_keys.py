"""F3, gitolite-style: SSH public keys that log in to the one helpdesk account as their user.

sshd never sees a user's shell: every key's authorized_keys line forces `ssh-session --key-id N`,
so the key decides who acts. A key is read the way sshd reads it (type, base64 blob whose inner
type matches, key material that parses) and stored once across all users: one key, one person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import User, UserKey
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import UserKeyRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit, changes, users
from tui_helpdesk.services.permissions import require_actor, require_admin

# What OpenSSH accepts by default; ssh-dss is off since OpenSSH 7.0 and certificates need a CA.
KEY_TYPES = (
    "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)
RSA_MIN_BITS = 2048
MAX_KEY_CHARS = 16_384
MAX_COMMENT_CHARS = 255
# The start of an authorized_keys options list (sshd(8) AUTHORIZED_KEYS FILE FORMAT).
OPTION = re.compile(
    r'^([^\s]*[=,"]|(no-)?(agent-forwarding|port-forwarding|pty|user-rc|X11-forwarding)$'
    r"|restrict$|cert-authority$|touch-required$|verify-required$)",
    re.IGNORECASE,
)
# Anything but printable text on one line: sshd would read a newline as a second entry.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    data: str
    comment: str
    fingerprint: str


def fingerprint(blob: bytes) -> str:
    """The SHA256 fingerprint `ssh-keygen -l` prints, so admins can compare them."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def parse_public_key(text: str) -> PublicKey:
    """One OpenSSH public key line (a .pub file): `type base64 [comment]`, nothing else."""
    if len(text) > MAX_KEY_CHARS:
        raise Invalid(f"key: longer than {MAX_KEY_CHARS} characters", field="key")
    line = text.removesuffix("\n").removesuffix("\r")
    if CONTROL.search(line):
        raise Invalid("key: give exactly one key on one line (no newlines)", field="key")
    fields = line.split(None, 2)
    if not fields:
        raise Invalid("key: empty; give the contents of a .pub file", field="key")
    _check_type(fields)
    if len(fields) < 2:
        raise Invalid(f"key: the base64 key data after {fields[0]} is missing", field="key")
    key_type, data = fields[0], fields[1]
    blob = _decode(data)
    _check_material(key_type, blob, data)
    comment = fields[2].strip() if len(fields) > 2 else ""
    if len(comment) > MAX_COMMENT_CHARS:
        raise Invalid(f"key: comment longer than {MAX_COMMENT_CHARS} characters", field="key")
    return PublicKey(key_type, data, comment, fingerprint(blob))


def _check_type(fields: list[str]) -> None:
    if fields[0] in KEY_TYPES:
        return
    if any(word in KEY_TYPES for word in fields[1:]) or OPTION.match(fields[0]):
        raise Invalid(
            "key: options (command=, from=, restrict, …) are not accepted: give the key alone; "
            "the helpdesk writes the options itself",
            field="key",
        )
    raise Invalid(
        f"key: type {fields[0]!r} is not accepted (use one of {', '.join(KEY_TYPES)})",
        field="key",
    )


def _decode(data: str) -> bytes:
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Invalid("key: the key data is not valid base64", field="key") from None


def _inner_type(blob: bytes) -> str:
    if len(blob) < 4:
        return ""
    (length,) = struct.unpack(">I", blob[:4])
    return blob[4 : 4 + length].decode("ascii", "replace") if length <= 64 else ""


def _check_material(key_type: str, blob: bytes, data: str) -> None:
    """The blob names its own type; it must be the one the line claims, and parse as such."""
    inner = _inner_type(blob)
    if inner != key_type:
        raise Invalid(
            f"key: the key data is of type {inner or 'unknown'!r}, not {key_type!r}", field="key"
        )
    try:
        key = load_ssh_public_key(f"{key_type} {data}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as error:
        raise Invalid(f"key: not a valid {key_type} key ({error})", field="key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < RSA_MIN_BITS:
        raise Invalid(
            f"key: RSA keys need at least {RSA_MIN_BITS} bits, this one has {key.key_size}",
            field="key",
        )


def to_record(key: UserKey, user: User) -> UserKeyRecord:
    return UserKeyRecord(
        id=key.id,
        user_email=user.email,
        user_active=user.active,
        key_type=key.key_type,
        fingerprint=key.fingerprint,
        comment=key.comment,
        public_key=f"{key.key_type} {key.key_data}",
        created_at=key.created_at,
    )


def add(session: Session, actor: UserRecord | None, email: str, key_text: str) -> UserKeyRecord:
    """Admins register keys (as gitolite's admin does): a key added is a login to the desk."""
    actor = require_admin(actor)
    owner = users.get(session, actor, email)
    key = parse_public_key(key_text)
    taken = session.execute(
        select(UserKey.id, User.email)
        .join(User, User.id == UserKey.user_id)
        .where(UserKey.fingerprint == key.fingerprint)
    ).first()
    if taken is not None:
        raise Conflict(
            f"key {key.fingerprint} is already registered (key {taken.id} of {taken.email})",
            field="key",
        )
    row = UserKey(
        user_id=owner.id,
        key_type=key.key_type,
        key_data=key.data,
        fingerprint=key.fingerprint,
        comment=key.comment,
    )
    session.add(row)
    session.flush()
    record = to_record(row, session.get_one(User, owner.id))
    audit.record(session, actor, "user.key_add", "user_key", row.id,
                 organisation_id=owner.organisation_id, after=to_jsonable(record))  # fmt: skip
    changes.notify(session)
    return record


def list_keys(session: Session, actor: UserRecord | None, email: str) -> list[UserKeyRecord]:
    """Admins see anyone's keys, a user their own."""
    actor = require_actor(actor)
    owner = users.get(session, actor, email)
    if owner.id != actor.id:
        require_admin(actor)
    rows = session.execute(
        select(UserKey, User)
        .join(User, User.id == UserKey.user_id)
        .where(UserKey.user_id == owner.id)
        .order_by(UserKey.id)
    )
    return [to_record(key, user) for key, user in rows]


def remove(session: Session, actor: UserRecord | None, email: str, key_id: int) -> UserKeyRecord:
    """The key stops working at once where sshd asks `ssh authorized-keys` (the command)."""
    actor = require_admin(actor)
    owner = users.get(session, actor, email)
    row = session.get(UserKey, key_id)
    if row is None or row.user_id != owner.id:
        raise NotFound(f"{owner.email} has no SSH key with id {key_id}", field="key_id")
    record = to_record(row, session.get_one(User, owner.id))
    session.delete(row)
    audit.record(session, actor, "user.key_remove", "user_key", key_id,
                 organisation_id=owner.organisation_id, before=to_jsonable(record))  # fmt: skip
    changes.notify(session)
    return record


def login_keys(
    session: Session, *, key_type: str | None = None, key_data: str | None = None
) -> list[UserKeyRecord]:
    """Keys that may log in now: of active users only, optionally the one sshd offers.

    There is no acting user: sshd asks (as the helpdesk account) before anyone logged in, and
    the answer holds public keys only.
    """
    query = select(UserKey, User).join(User, User.id == UserKey.user_id).where(User.active)
    if key_data is not None:
        query = query.where(UserKey.key_data == key_data)
    if key_type is not None:
        query = query.where(UserKey.key_type == key_type)
    return [to_record(key, user) for key, user in session.execute(query.order_by(UserKey.id))]


def user_for_key(session: Session, key_id: int) -> UserRecord:
    """Who logged in with key `key_id`; a removed key or an inactive user gets nobody."""
    row = session.execute(
        select(User).join(UserKey, UserKey.user_id == User.id).where(UserKey.id == key_id)
    ).scalar_one_or_none()
    if row is None:
        raise PermissionDenied(
            f"SSH key {key_id} is not registered (any more); ask an admin", field="key_id"
        )
    if not row.active:
        raise PermissionDenied(f"user {row.email} is inactive; ask an admin", field="key_id")
    return users.to_record(row)
