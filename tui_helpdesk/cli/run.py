"""Long-running modes: the headless worker and the TUI (with the worker embedded)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from tui_helpdesk.cli import identity
from tui_helpdesk.cli.context import AS_KEY, Cx, common
from tui_helpdesk.cli.terminal import over_ssh, ssh_environment
from tui_helpdesk.errors import HelpdeskError

log = logging.getLogger(__name__)

pass_cx = click.make_pass_decorator(Cx)


@click.command()
@click.option("--smtp-host", metavar="HOST", help="Listen address (default from settings).")
@click.option("--smtp-port", type=click.IntRange(0, 65535), help="Port (0: any free port).")
@common
@pass_cx
@click.pass_context
def worker(ctx: click.Context, cx: Cx, smtp_host: str | None, smtp_port: int | None) -> None:
    """Run the SMTP ingest worker until SIGTERM / SIGINT."""
    changes = {k: v for k, v in {"host": smtp_host, "port": smtp_port}.items() if v is not None}
    settings = cx.settings().replace(smtp=changes) if changes else cx.settings()
    cx.database()  # refuse early, with a clear message, when the schema is missing
    from tui_helpdesk.worker.runtime import run_worker

    ctx.exit(run_worker(settings))


def start_cache() -> Path:
    """Where the TUI keeps its start-up cache (tui/quick_start.py): the user's cache folder."""
    from tui_helpdesk import start_cache as cache_files

    return cache_files.default_directory()


def warm_start_cache(cx: Cx, db: Any) -> int:
    """After `init` or `db upgrade`: the start-up caches of this database in the user's cache
    folder written again for this code and schema, with the one of whom this command acts as
    (their TUI start looks them up the same way), so that the first start after an install or
    upgrade draws its rows as quickly as the next ones. Never fails the command."""
    who = _who(cx, click.get_current_context().meta.get(AS_KEY))
    try:
        from tui_helpdesk.services import prepared

        return prepared.refresh(db, cx.settings(), start_cache(), also=[who] if who else [])
    except Exception as error:  # the cache is an extra: a TUI start writes it anyway
        log.info("start-up cache not written: %s", error)
        return 0


def _who(cx: Cx, as_email: str | None) -> tuple[str, str] | None:
    """How the start-up cache looks up who acts, as `resolve_email` will: by the SSH key over
    `ssh-session`, by --as when it is honoured, else by the OS login. None when the cache must
    not look (--as refused: to a non-owner, or over SSH; an OS account without a login name),
    so that the normal start refuses, with its message, before any row is shown.

    Decided without the database layer: the owner check is identity.database_owner itself."""
    if cx.ssh_key_id is not None:
        return None if as_email else ("ssh_key", str(cx.ssh_key_id))
    if as_email:
        return ("email", as_email.strip().lower()) if _may_act_as_anyone(cx) else None
    login = identity.os_login(cx.uid)
    return None if login is None else ("os_user", login)


def _may_act_as_anyone(cx: Cx) -> bool:
    """--as will be honoured (a file that cannot be read: the normal start tells why)."""
    try:
        owner = identity.database_owner(cx.settings())
    except (OSError, ValueError):
        return False
    return identity.may_act_as_anyone(owner, cx.uid)


def start_tui(cx: Cx, *, no_worker: bool, ssh: bool = False) -> int:
    """Start the TUI; who acts is resolved, and the embedded worker started, after its first
    frame (in a thread of the app), with the same checks and messages as every command. With
    a start-up cache for who acts (`_who`), the first rows come before that.

    Over SSH (`ssh-session`, or SSH_* in the environment) the terminal settings of [tui] are
    put in the environment first: Textual reads them when it is imported (cli/terminal.py).
    """
    settings = cx.settings()
    as_email = click.get_current_context().meta.get(AS_KEY)
    if ssh or over_ssh(os.environ):
        os.environ.update(ssh_environment(settings.tui, os.environ))
    from tui_helpdesk.tui import start_ahead

    who, cache_folder = _who(cx, as_email), start_cache()
    # Before Textual is imported: a first start's cache is written on the other core.
    ahead = start_ahead.start(settings, cache_folder, who)
    from tui_helpdesk.tui.app import run_tui

    embedded: list[Any] = []

    def start_worker() -> tuple[str, int]:
        from tui_helpdesk.worker.runtime import EmbeddedWorker

        worker = EmbeddedWorker(settings)
        try:
            address = worker.start()
        except RuntimeError as error:
            raise HelpdeskError(
                f"{error} (smtp {settings.smtp.host}:{settings.smtp.port}); "
                "start with --no-worker, or set TUI_HELPDESK_SMTP_PORT to a free port"
            ) from None
        embedded.append(worker)
        return address

    try:
        return run_tui(
            settings,
            resolve=lambda: cx.resolve_email(as_email),
            start_worker=None if no_worker else start_worker,
            start_cache=cache_folder,
            who=who,
            ahead=ahead,
        )
    finally:
        for worker in embedded:
            worker.stop()
