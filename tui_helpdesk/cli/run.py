"""Long-running modes: the headless worker and the TUI (with the worker embedded)."""

from __future__ import annotations

import os

import click

from tui_helpdesk.cli.context import Cx, common
from tui_helpdesk.cli.terminal import over_ssh, ssh_environment

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


def start_tui(cx: Cx, *, no_worker: bool, ssh: bool = False) -> int:
    """Resolve the acting user first (refusing with a message), then start the TUI.

    Over SSH (`ssh-session`, or SSH_* in the environment) the terminal settings of [tui] are
    put in the environment first: Textual reads them when it is imported (cli/terminal.py).
    """
    with cx.session() as (_session, actor):
        assert actor is not None  # session() without bootstrap never yields None
        email = actor.email
    settings = cx.settings()
    if ssh or over_ssh(os.environ):
        os.environ.update(ssh_environment(settings.tui, os.environ))
    from tui_helpdesk.tui.app import run_tui

    if no_worker:
        return run_tui(settings, email)
    from tui_helpdesk.worker.runtime import EmbeddedWorker

    embedded = EmbeddedWorker(settings)
    try:
        address = embedded.start()
    except RuntimeError as error:
        raise click.ClickException(
            f"{error} (smtp {settings.smtp.host}:{settings.smtp.port}); "
            "start with --no-worker, or set TUI_HELPDESK_SMTP_PORT to a free port"
        ) from None
    try:
        return run_tui(settings, email, worker_address=address)
    finally:
        embedded.stop()
