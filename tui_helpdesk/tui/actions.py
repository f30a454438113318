"""What agents do to conversations (F42, F44), as flows any screen runs on a list of ids.

A flow asks what it needs (a picker of members, queues or priorities; the close dialog; the
tags prompt), then calls the service once per conversation through `actions.for_each` in a
worker thread (one unit of work; a refused conversation is rolled back alone), and reports:
one notification for what went through, the service's own message for every refusal.

Use from a screen:

    BINDINGS = [*action_bindings("conversation")]          # ids "conversation.close", …
    self.actions = ConversationActions(self, lambda: [self.conversation_id], done=...)
    def action_act(self, name: str) -> None: self.actions.run(name)
    def commands(self): return [*self.actions.commands(), …]   # "conversation: close", …
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.screen import Screen

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ActionResult, UserRecord
from tui_helpdesk.services.vocabulary import PRIORITIES
from tui_helpdesk.terminal_text import clean
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.modals.picker import Choice, PickerScreen
from tui_helpdesk.tui.modals.prompt import CloseChoice, CloseScreen, PromptScreen

if TYPE_CHECKING:
    from types import ModuleType

GROUP = "conversation-action"
MAX_REFUSALS_SHOWN = 3


@dataclass(frozen=True)
class ActionSpec:
    name: str  # the action's argument and the end of its binding id
    key: str
    verb: str  # palette: "conversation: <verb>"
    description: str  # footer and help
    help: str
    key_display: str | None = None


ACTIONS = (
    ActionSpec("assign_me", "a", "assign to me", "Mine", "Assign to yourself"),
    ActionSpec("assign", "A", "assign to someone", "Assign", "Assign to a member you pick"),
    ActionSpec("transfer", "t", "transfer", "Transfer", "Hand over to an agent or a queue"),
    ActionSpec("pending", "p", "set pending", "Pending", "Waiting on the customer"),
    ActionSpec("close", "c", "close", "Close",
               "Close, with an optional note and the close notice"),
    ActionSpec("reopen", "o", "reopen", "Reopen", "Open a pending or closed conversation again"),
    ActionSpec("priority", "exclamation_mark", "set priority", "Priority", "Low to urgent",
               key_display="!"),
    ActionSpec("tags", "number_sign", "edit tags", "Tags", "Add tags; -tag removes one",
               key_display="#"),
)  # fmt: skip
SHOWN = {"assign_me", "close", "transfer"}  # in the footer; every one is in `?` and the palette


def action_bindings(prefix: str, action: str = "act") -> list[Binding]:
    """One binding per action, ids "<prefix>.<name>", running `<action>('<name>')`."""
    return [
        Binding(spec.key, f"{action}('{spec.name}')", spec.description, id=f"{prefix}.{spec.name}",
                tooltip=spec.help, key_display=spec.key_display, show=spec.name in SHOWN)
        for spec in ACTIONS
    ]  # fmt: skip


Done = Callable[[list[ActionResult]], None]


def _services() -> ModuleType:
    """The action services, imported at the first action (not at start: the first frame)."""
    from tui_helpdesk.services.conversations import actions

    return actions


class ConversationActions:
    """Runs the flows for `screen` on the ids `chosen()` returns when a flow starts;
    `done(results)` runs on the event loop after the service answered."""

    def __init__(
        self, screen: Screen[Any], chosen: Callable[[], list[int]], done: Done | None = None
    ) -> None:
        self.screen = screen
        self.chosen = chosen
        self.done = done

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand(f"conversation: {spec.verb}", spec.help, partial(self.run, spec.name))
            for spec in ACTIONS
        ]

    def run(self, name: str) -> None:
        ids = self.chosen()
        if not ids:
            self.screen.notify("No conversation chosen", severity="warning", markup=False)
            return
        getattr(self, f"_{name}")(ids)

    # -- the flows -----------------------------------------------------------------------

    def _assign_me(self, ids: list[int]) -> None:
        self.apply(ids, _services().assign, "assigned to you", user="me")

    def _assign(self, ids: list[int]) -> None:
        def chosen(value: str | None) -> None:
            if value is not None:
                self.apply(ids, _services().assign, "assigned", user=value)

        loader = partial(_member_choices, ids=ids, nobody=True)
        self.screen.app.push_screen(PickerScreen("Assign to", loader), chosen)

    def _transfer(self, ids: list[int]) -> None:
        def chosen(value: str | None) -> None:
            if value is None:
                return
            kind, _, name = value.partition(":")
            target = {"to_user": name} if kind == "user" else {"to_queue": name}
            self.apply(ids, _services().transfer, "transferred", **target)

        self.screen.app.push_screen(PickerScreen("Transfer to", partial(_targets, ids=ids)), chosen)

    def _pending(self, ids: list[int]) -> None:
        self.apply(ids, _services().set_pending, "set pending")

    def _close(self, ids: list[int]) -> None:
        settings = host(self.screen).data.settings

        def chosen(choice: CloseChoice | None) -> None:
            if choice is not None:
                self.apply(ids, _services().close, "closed", settings=settings, note=choice.note,
                           notify=choice.notify)  # fmt: skip

        self.screen.app.push_screen(CloseScreen(len(ids)), chosen)

    def _reopen(self, ids: list[int]) -> None:
        self.apply(ids, _services().reopen, "reopened")

    def _priority(self, ids: list[int]) -> None:
        def chosen(value: str | None) -> None:
            if value is not None:
                self.apply(ids, _services().set_priority, f"priority {value}", priority=value)

        choices = [Choice(p, p) for p in PRIORITIES]
        self.screen.app.push_screen(PickerScreen("Priority", choices), chosen)

    def _tags(self, ids: list[int]) -> None:
        def chosen(value: str | None) -> None:
            if value is None or not value.split():
                return
            words = value.replace(",", " ").split()
            add = [w for w in words if not w.startswith("-")]
            remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]
            self._write(ids, "tags changed", partial(_edit_tags, ids=ids, add=add, remove=remove))

        prompt = PromptScreen("Tags", "billing urgent -spam",
                              "words add tags, -word removes one · enter applies")  # fmt: skip
        self.screen.app.push_screen(prompt, chosen)

    # -- calling the service -------------------------------------------------------------

    def apply(
        self, ids: Sequence[int], action: Callable[..., Any], what: str, **arguments: Any
    ) -> None:
        """Run one service action on every id (in a worker) and report."""

        def work(session: Any, actor: UserRecord) -> list[ActionResult]:
            return _services().for_each(session, actor, ids, action, **arguments)

        self._write(list(ids), what, work)

    def _write(
        self, ids: list[int], what: str, work: Callable[[Any, UserRecord], list[ActionResult]]
    ) -> None:
        def in_thread() -> None:
            try:
                results = host(self.screen).data.write(work)
            except HelpdeskError as error:
                refused = [ActionResult(i, ok=False, error=error.kind, message=error.message)
                           for i in ids]  # fmt: skip
                self.screen.app.call_from_thread(self._report, what, refused)
                return
            self.screen.app.call_from_thread(self._report, what, results)

        self.screen.run_worker(in_thread, thread=True, group=GROUP, exit_on_error=False)

    def _report(self, what: str, results: list[ActionResult]) -> None:
        app = self.screen.app
        went = [r for r in results if r.ok]
        refused = [r for r in results if not r.ok]
        if went:
            noun = "conversation" if len(went) == 1 else "conversations"
            app.notify(f"{len(went)} {noun} {what}", markup=False)
            app.post_message(DataChanged())
        for result in refused[:MAX_REFUSALS_SHOWN]:
            app.notify(clean(f"#{result.conversation_id}: {result.message}"),
                       title="Refused", severity="error", markup=False)  # fmt: skip
        if len(refused) > MAX_REFUSALS_SHOWN:
            app.notify(f"{len(refused) - MAX_REFUSALS_SHOWN} more refused", severity="error",
                       markup=False)  # fmt: skip
        if self.done is not None:
            self.done(results)


# -- what the pickers offer (run in the picker's worker, through data.read) ---------------


def _member_choices(
    session: Any, actor: UserRecord, *, ids: list[int], nobody: bool = False
) -> list[Choice]:
    found = [Choice(user.email, f"{user.name} <{user.email}>", user.availability)
             for user in _services().assignable(session, actor, ids)]  # fmt: skip
    return [*found, Choice("none", "nobody", "unassigned")] if nobody else found


def _targets(session: Any, actor: UserRecord, *, ids: list[int]) -> list[Choice]:
    people = [Choice(f"user:{c.value}", c.label, c.hint) for c in
              _member_choices(session, actor, ids=ids)]  # fmt: skip
    from tui_helpdesk.services import queues

    places = [Choice(f"queue:{q.name}", f"queue {q.name}", q.assignment_rule)
              for q in queues.list_queues(session, actor)]  # fmt: skip
    return [*places, *people]


def _edit_tags(
    session: Any, actor: UserRecord, *, ids: list[int], add: list[str], remove: list[str]
) -> list[ActionResult]:
    """Add then remove, per conversation; one result each (the removal's, if any)."""
    actions = _services()
    results: dict[int, ActionResult] = {}
    if add:
        for result in actions.for_each(session, actor, ids, actions.add_tags, tags=add):
            results[result.conversation_id] = result
    if remove:
        for result in actions.for_each(session, actor, ids, actions.remove_tags, tags=remove):
            if results.get(result.conversation_id, result).ok:
                results[result.conversation_id] = result
    return list(results.values())
