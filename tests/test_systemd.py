"""The worker as a systemd service: the unit file, sd_notify over a real socket, SIGHUP reload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from test_ingest_support import LISTENING, build_mail, make_desk, notify_messages, send

from tui_helpdesk.worker import systemd

UNIT = Path(__file__).parent.parent / "deploy" / "tui-helpdesk-worker.service"


def unit_keys(text: str) -> dict[str, dict[str, list[str]]]:
    """[Section] → key → values, as systemd reads them (comments and blank lines skipped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_file_asks_for_what_the_worker_does() -> None:
    service = unit_keys(UNIT.read_text())["Service"]
    expected = {
        "Type": ["notify"], "Restart": ["on-failure"], "StateDirectory": ["tui-helpdesk"],
        "ProtectSystem": ["strict"], "NoNewPrivileges": ["yes"], "User": ["helpdesk"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"], "KillSignal": ["SIGTERM"],
    }  # fmt: skip
    for key, values in expected.items():
        assert service.get(key) == values, key
    assert service["ExecStart"][0].endswith("tui-helpdesk worker")
    assert "#AmbientCapabilities=CAP_NET_BIND_SERVICE" in UNIT.read_text()  # for port 25


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """systemd's own check, with ExecStart pointed at this installation (it must exist)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # no systemd here: the key check above is what we have
        assert unit_keys(UNIT.read_text())["Service"]["Type"] == ["notify"]
        return
    executable = Path(sys.executable).parent / "tui-helpdesk"
    text = UNIT.read_text().replace("/opt/tui-helpdesk/.venv/bin/tui-helpdesk", str(executable))
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0 and str(copy) not in done.stderr, done.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace("Type=notify", "Type=notifyy"))  # the check can fail
    assert "notifyy" in subprocess.run([analyze, "verify", str(broken)],
                                       capture_output=True, text=True).stderr  # fmt: skip


def test_notify_sends_to_path_and_abstract_sockets(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    sock, name = notify_socket
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": name})
    assert sock.recv(4096) == b"READY=1"
    path = Path("/tmp") / f"hd-{uuid.uuid4().hex[:8]}.sock"  # short: sun_path holds 108 bytes
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as by_path:
        by_path.bind(str(path))
        try:
            assert systemd.notify("WATCHDOG=1", {"NOTIFY_SOCKET": str(path)})
            assert by_path.recv(4096) == b"WATCHDOG=1"
        finally:
            path.unlink()
    assert not systemd.notify("READY=1", {})  # not under systemd: nothing to do
    assert systemd.watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert systemd.watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None


def test_worker_tells_systemd_ready_alive_reloading_and_stopping(
    db,
    settings,
    db_url,
    notify_socket,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    sock, name = notify_socket
    desk = make_desk(db, settings)
    config = tmp_path / "helpdesk.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n[smtp]\nport = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_HELPDESK_")}
    env.update(TUI_HELPDESK_CONFIG=str(config), NOTIFY_SOCKET=name, WATCHDOG_USEC="1000000")
    worker = subprocess.Popen([sys.executable, "-m", "tui_helpdesk", "worker"], env=env,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        ready = notify_messages(sock, "READY=1")
        port = int(LISTENING.search(ready[-1]).group(2))  # type: ignore[union-attr]
        assert notify_messages(sock, "WATCHDOG=1")  # beats at least twice per WATCHDOG_USEC
        assert send("127.0.0.1", port, build_mail(), [desk.support.alias])[0] == 250
        config.write_text(config.read_text() + '[worker]\nlog_level = "WARNING"\n'
                          '[mail]\nautoreply_period_hours = 12\n')  # fmt: skip
        worker.send_signal(signal.SIGHUP)
        reload = notify_messages(sock, "RELOADING=1")
        assert "MONOTONIC_USEC=" in reload[-1]
        assert "READY=1" in notify_messages(sock, "READY=1")[-1]
        assert send("127.0.0.1", port, build_mail(subject="after"), [desk.support.alias])[0] == 250
        worker.send_signal(signal.SIGTERM)
        assert notify_messages(sock, "STOPPING=1")
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    log = worker.stderr.read() if worker.stderr else ""
    assert "log level now WARNING" in log
    assert "applied after a restart (systemctl restart tui-helpdesk-worker): " \
           "mail.autoreply_period_hours" in log  # fmt: skip
    assert "worker stopped" not in log  # an INFO line, silenced by the reloaded level


def test_a_broken_config_on_reload_keeps_the_worker_running(
    db,
    settings,
    db_url,
    notify_socket,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    sock, name = notify_socket
    desk = make_desk(db, settings)
    config = tmp_path / "helpdesk.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n[smtp]\nport = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_HELPDESK_")}
    env.update(TUI_HELPDESK_CONFIG=str(config), NOTIFY_SOCKET=name)
    worker = subprocess.Popen([sys.executable, "-m", "tui_helpdesk", "worker"], env=env,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        port = int(LISTENING.search(notify_messages(sock, "READY=1")[-1]).group(2))  # type: ignore[union-attr]
        config.write_text("[smtp]\nport = 'many'\n")
        worker.send_signal(signal.SIGHUP)
        assert "READY=1" in notify_messages(sock, "READY=1")[-1]
        deadline = time.monotonic() + 30
        while worker.poll() is None and time.monotonic() < deadline:
            if send("127.0.0.1", port, build_mail(), [desk.support.alias])[0] == 250:
                break
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "reload refused, the running settings stay" in (worker.stderr.read() or "")
