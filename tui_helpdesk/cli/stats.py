"""`tui-helpdesk stats`: per queue, per agent and per day numbers (F60)."""

from __future__ import annotations

import click

from tui_helpdesk.cli.context import Cx, common, emit
from tui_helpdesk.cli.output import table
from tui_helpdesk.records import StatsRecord

pass_cx = click.make_pass_decorator(Cx)


@click.command("stats")
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True,
              help="The period medians, agents and the daily series cover.")  # fmt: skip
@common
@pass_cx
def stats(cx: Cx, days: int) -> None:
    """Open, unassigned, received and resolved today, median first response and resolution
    per queue; handled and response time per agent; received and resolved per day."""
    from tui_helpdesk.services import stats as service

    with cx.session() as (session, actor):
        emit(service.stats(session, actor, days=days), stats_text)


def stats_text(record: StatsRecord) -> str:
    from tui_helpdesk.services.stats import duration

    queues = table(
        ["queue", "open", "unassigned", "received today", "resolved today",
         "median first response", "median resolution"],
        [(q.queue, q.open, q.unassigned, q.received_today, q.resolved_today,
          duration(q.median_first_response), duration(q.median_resolution))
         for q in record.queues],
        empty="no queues",
    )  # fmt: skip
    agents = table(
        ["agent", "handled", "median first response"],
        [(a.email, a.handled, duration(a.median_first_response)) for a in record.agents],
        empty="no agents",
    )
    days = table(
        ["day", "received", "resolved"], [(d.day, d.received, d.resolved) for d in record.days]
    )
    parts = [queues, f"Agents, last {record.period_days} days:", agents,
             f"Per day ({record.timezone}):", days]  # fmt: skip
    if record.spoofing:
        parts += [
            "Possible spoofing, per mailbox:",
            table(["mailbox", "messages"], record.spoofing),
        ]
    return "\n\n".join(parts)
