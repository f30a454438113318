"""SSH keys (F3, gitolite-style): read like sshd reads them, one key one user, gone at once."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import add_user, make_org
from hypothesis import given
from hypothesis import strategies as st

from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.services import ssh_keys, users

MakeKey = Callable[..., Path]  # the make_key fixture (conftest.py)


def keygen_fingerprint(public: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(public)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return out.split()[1]


def test_keys_of_every_accepted_kind_parse_with_ssh_keygen_fingerprints(make_key: MakeKey) -> None:
    for kind, extra in [("ed25519", ()), ("ecdsa", ("-b", "384")), ("rsa", ("-b", "3072"))]:
        public = make_key(kind, *extra)
        key = ssh_keys.parse_public_key(public.read_text())
        assert key.fingerprint == keygen_fingerprint(public)
        assert key.comment == "laptop"
        assert f"{key.key_type} {key.data}" == " ".join(public.read_text().split()[:2])


def test_what_sshd_would_not_take_from_us_is_refused(make_key: MakeKey) -> None:
    line = make_key().read_text().strip()
    key_type, data, _comment = line.split(" ", 2)
    rsa = make_key("rsa").read_text().split()
    cases = {
        f'command="/bin/sh" {line}': "options",
        f"restrict {line}": "options",
        f'no-pty,from="10.0.0.1" {line}': "options",
        f"{line}\n{line}": "one line",
        f"{key_type} {data}\rcomment": "one line",
        f"{key_type}": "missing",
        f"ssh-rsa {data}": "of type 'ssh-ed25519', not 'ssh-rsa'",
        f"{key_type} {data[:-4]}!!!!": "base64",
        f"{key_type} {data[:-8]}": "not a valid ssh-ed25519 key",
        f"{key_type} {rsa[1]}": "of type 'ssh-rsa'",
        f"ssh-dss {data}": "not accepted",
        "": "empty",
        f"{line} {'x' * 300}": "comment longer",
    }
    for text, expected in cases.items():
        with pytest.raises(Invalid) as caught:
            ssh_keys.parse_public_key(text)
        assert expected in caught.value.message, (text, caught.value.message)
        assert caught.value.field == "key"
    assert ssh_keys.parse_public_key(line + "\n").comment == "laptop"  # a .pub file's newline


def test_short_rsa_and_dsa_keys_are_refused(make_key: MakeKey) -> None:
    with pytest.raises(Invalid, match="at least 2048 bits"):
        ssh_keys.parse_public_key(make_key("rsa", "-b", "1024").read_text())
    with pytest.raises(Invalid, match="'ssh-dss' is not accepted"):
        ssh_keys.parse_public_key(make_key("dsa").read_text())


@given(st.text(max_size=600))
def test_any_text_is_a_key_or_invalid(text: str) -> None:
    with contextlib.suppress(Invalid):
        ssh_keys.parse_public_key(text)


def test_admins_register_keys_once_and_removal_is_immediate(
    db: Database, make_key: MakeKey
) -> None:
    org = make_org(db)
    bob = add_user(db, org.admin, "bob@acme.test")
    add_user(db, org.admin, "carol@acme.test")
    text = make_key(comment="bob's laptop").read_text()
    with db.write() as session:
        key = ssh_keys.add(session, org.admin, "bob@acme.test", text)
    assert (key.user_email, key.comment, key.user_active) == ("bob@acme.test", "bob's laptop", True)
    with db.write() as session, pytest.raises(Conflict, match=f"key {key.id} of bob@acme.test"):
        ssh_keys.add(session, org.admin, "carol@acme.test", text)
    with db.write() as session, pytest.raises(PermissionDenied):
        ssh_keys.add(session, bob, "bob@acme.test", make_key().read_text())
    with db.read() as session:
        assert [k.id for k in ssh_keys.list_keys(session, bob, "bob@acme.test")] == [key.id]
        with pytest.raises(PermissionDenied):
            ssh_keys.list_keys(session, bob, "ada@acme.test")
        offered = ssh_keys.login_keys(
            session, key_type=key.key_type, key_data=key.public_key.split()[1]
        )
        assert [k.id for k in offered] == [key.id]
        assert ssh_keys.user_for_key(session, key.id).email == "bob@acme.test"
    with db.write() as session, pytest.raises(NotFound):
        ssh_keys.remove(session, org.admin, "carol@acme.test", key.id)
    with db.write() as session:
        ssh_keys.remove(session, org.admin, "bob@acme.test", key.id)
    with db.read() as session:
        assert ssh_keys.login_keys(session) == []
        with pytest.raises(PermissionDenied, match="not registered"):
            ssh_keys.user_for_key(session, key.id)


def test_an_inactive_users_keys_stop_working(db: Database, make_key: MakeKey) -> None:
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test")
    with db.write() as session:
        key = ssh_keys.add(session, org.admin, "bob@acme.test", make_key().read_text())
        users.set_active(session, org.admin, "bob@acme.test", False)
    with db.read() as session:
        assert ssh_keys.login_keys(session) == []
        with pytest.raises(PermissionDenied, match="inactive"):
            ssh_keys.user_for_key(session, key.id)
        assert ssh_keys.list_keys(session, org.admin, "bob@acme.test")[0].user_active is False
