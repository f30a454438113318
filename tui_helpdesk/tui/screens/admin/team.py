"""Team (F3): users with their role, active flag, availability, OS login and SSH keys.

Everyone sees the team and sets their own availability; admins change the rest (the services
refuse otherwise, and the refusal is shown as written). `cycle_availability` is the app-wide
F3 key: available → away → offline → available, for the acting user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import UserKeyRecord, UserRecord
from tui_helpdesk.services import ssh_keys, users
from tui_helpdesk.services.vocabulary import AVAILABILITIES, ROLES
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.modals.admin_dialogs import ConfirmModal, Field, FormModal, PickerModal
from tui_helpdesk.tui.widgets.safe_text import safe_text

AVAILABILITY_STYLE = {"available": "green", "away": "yellow", "offline": "dim"}


def next_availability(current: str) -> str:
    return AVAILABILITIES[(AVAILABILITIES.index(current) + 1) % len(AVAILABILITIES)]


def _cycle(session: Any, actor: UserRecord) -> UserRecord:
    me = users.get(session, actor, actor.email)  # what it is now, not at start-up
    return users.set_availability(session, actor, actor.email, next_availability(me.availability))


def cycle_availability(app: Any) -> None:
    """F3 anywhere: the acting user's availability moves on one step; a notification says
    what it is now (only `available` members get new work)."""
    helpdesk: Helpdesk = app

    def run() -> None:
        try:
            record = helpdesk.data.write(_cycle)
        except HelpdeskError as error:
            app.call_from_thread(app.notify, error.message, severity="error", markup=False)
            return
        app.call_from_thread(
            app.notify, f"You are now {record.availability}.", title="Availability", markup=False
        )

    app.run_worker(run, thread=True, exit_on_error=False, group="app-availability")


@dataclass(frozen=True)
class TeamView:
    users: tuple[UserRecord, ...]
    keys: tuple[UserKeyRecord, ...]
    keys_of: str | None
    keys_refusal: str


def read_view(session: Any, actor: UserRecord, selected: str | None) -> TeamView:
    found = tuple(users.list_users(session, actor))
    emails = [u.email for u in found]
    email = selected if selected in emails else (emails[0] if emails else None)
    keys: tuple[UserKeyRecord, ...] = ()
    refusal = ""
    if email is not None:
        try:
            keys = tuple(ssh_keys.list_keys(session, actor, email))
        except HelpdeskError as error:
            refusal = error.message
    return TeamView(found, keys, email, refusal)


class TeamScreen(Screen[None]):
    """The organisation's users; under them the SSH keys of the highlighted one."""

    DEFAULT_CSS = """
    TeamScreen #team-title, TeamScreen #keys-title, TeamScreen #team-message {
        height: auto; padding: 0 1;
    }
    TeamScreen #team-title { background: $panel; }
    TeamScreen #team-users { height: 2fr; }
    TeamScreen #team-keys { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="team.back", tooltip="Back to the admin menu"),
        Binding("n", "create", "New user", id="team.create",
                tooltip="Add a user: email, name, role, OS login"),
        Binding("v", "availability", "Availability", id="team.availability",
                tooltip="Set the highlighted user's availability (others': admins only)"),
        Binding("p", "role", "Admin/agent", id="team.role",
                tooltip="Make the highlighted user an admin, or an agent again"),
        Binding("a", "active", "(De)activate", id="team.active",
                tooltip="Deactivate the highlighted user (they keep their history), or activate"),
        Binding("l", "os_login", "OS login", id="team.os_login",
                tooltip="Map the OS login the user starts the desk with"),
        Binding("k", "key_add", "Add SSH key", id="team.key_add",
                tooltip="Register an OpenSSH public key: a login to the desk over SSH"),
        Binding("K", "key_remove", "Remove SSH key", id="team.key_remove",
                tooltip="Remove one of the highlighted user's SSH keys (asks first)"),
        Binding("r", "refresh", "Refresh", show=False, id="team.refresh",
                tooltip="Read the team again"),
    ]  # fmt: skip

    def __init__(self, *, then: str | None = None) -> None:
        super().__init__(id="team")
        self.then = then
        self.view: TeamView | None = None
        self.selected: str | None = None
        self._generation = 0

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(Text("Team", style="bold"), id="team-title")
        users_table: DataTable[Any] = DataTable(id="team-users", cursor_type="row")
        users_table.add_columns("Name", "Email", "Role", "Active", "Availability", "OS login")
        yield users_table
        yield Static("", id="keys-title")
        keys_table: DataTable[Any] = DataTable(id="team-keys", cursor_type="row")
        keys_table.add_columns("Id", "Type", "Fingerprint", "Comment")
        yield keys_table
        yield Static("", id="team-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#team-users", DataTable).focus()
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        self._load(self._generation, self.selected)

    @work(thread=True, exclusive=True, exit_on_error=False, group="team-load")
    def _load(self, generation: int, selected: str | None) -> None:
        try:
            view = self.helpdesk.data.read(lambda s, a: read_view(s, a, selected))
        except HelpdeskError as error:
            self.app.call_from_thread(self.show_message, error.message)
            return
        self.app.call_from_thread(self._show, generation, view)

    def _show(self, generation: int, view: TeamView) -> None:
        if generation != self._generation:
            return
        self.view = view
        self.selected = view.keys_of
        title = Text("Team", style="bold")
        active = sum(1 for u in view.users if u.active)
        title.append(f" · {len(view.users)} users, {active} active", style="dim")
        self.query_one("#team-title", Static).update(title)
        table = self.query_one("#team-users", DataTable)
        table.clear()
        for user in view.users:
            table.add_row(
                safe_text(user.name, one_line=True),
                safe_text(user.email, one_line=True),
                Text(user.role, style="bold" if user.is_admin else ""),
                "yes" if user.active else Text("no", style="red"),
                Text(user.availability, style=AVAILABILITY_STYLE.get(user.availability, "")),
                safe_text(user.os_user or "—", one_line=True),
                key=user.email,
            )
        emails = [u.email for u in view.users]
        if view.keys_of in emails:
            table.move_cursor(row=emails.index(view.keys_of), animate=False)
        self._show_keys(view)
        if self.then is not None:
            then, self.then = self.then, None
            self.call_later(self.run_action, then)

    def _show_keys(self, view: TeamView) -> None:
        title = Text("SSH keys of ", style="dim")
        title.append_text(safe_text(view.keys_of or "nobody", one_line=True))
        if view.keys_refusal:
            title.append("  ")
            title.append_text(safe_text(view.keys_refusal, "yellow"))
        self.query_one("#keys-title", Static).update(title)
        table = self.query_one("#team-keys", DataTable)
        table.clear()
        for key in view.keys:
            table.add_row(str(key.id), key.key_type, key.fingerprint,
                          safe_text(key.comment, one_line=True), key=str(key.id))  # fmt: skip

    @on(DataTable.RowHighlighted, "#team-users")
    def _user_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return
        email = str(event.row_key.value)
        if email != self.selected:
            self.selected = email
            self.reload()

    def on_data_changed(self, _message: DataChanged) -> None:
        self.reload()

    def show_message(self, message: str, *, error: bool = True) -> None:
        self.query_one("#team-message", Static).update(
            safe_text(message, "bold red" if error else "green")
        )

    @property
    def user(self) -> UserRecord | None:
        if self.view is None:
            return None
        user = next((u for u in self.view.users if u.email == self.selected), None)
        if user is None:
            self.show_message("No user highlighted.")
        return user

    # -- running services ---------------------------------------------------------------------

    def write(self, work_: Callable[[Any, UserRecord], Any], done: str) -> None:
        self._write(work_, done)

    @work(thread=True, exit_on_error=False, group="team-write")
    def _write(self, work_: Callable[[Any, UserRecord], Any], done: str) -> None:
        try:
            self.helpdesk.data.write(work_)
        except HelpdeskError as error:
            self.app.call_from_thread(self.show_message, error.message)
            return
        self.app.call_from_thread(self._written, done)

    def _written(self, done: str) -> None:
        self.show_message(done, error=False)
        self.reload()

    def _after_form(self, done: str) -> Callable[[Any], None]:
        def closed(result: Any) -> None:
            if result is not None:
                if isinstance(result, UserRecord):
                    self.selected = result.email
                self._written(done)

        return closed

    # -- actions ------------------------------------------------------------------------------

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand(f"team: {b.description.lower()}", b.tooltip, self._runner(b.action))
            for b in self.BINDINGS
            if isinstance(b, Binding) and b.action != "back"
        ]

    def _runner(self, action: str) -> Callable[[], None]:
        return lambda: self.call_later(self.run_action, action)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_refresh(self) -> None:
        self.reload()

    def action_create(self) -> None:
        fields = [
            Field("email", "Email", placeholder="bob@example.com"),
            Field("name", "Name", placeholder="Bob Smith"),
            Field("role", "Role", "agent", choices=ROLES),
            Field("os_user", "OS login", placeholder="optional: bob"),
        ]
        self.app.push_screen(
            FormModal("New user", fields, lambda v: lambda s, a: users.add(
                s, a, email=v["email"], name=v["name"], role=v["role"] or "agent",
                os_user=v["os_user"] or None), form_id="user-form"),
            self._after_form("User added."),
        )  # fmt: skip

    def action_availability(self) -> None:
        user = self.user
        if user is None:
            return
        email = user.email

        def chosen(value: str | None) -> None:
            if value:
                self.write(lambda s, a: users.set_availability(s, a, email, value),
                           f"{email} is now {value}.")  # fmt: skip

        choices = [(v, Text(v, style=AVAILABILITY_STYLE[v])) for v in AVAILABILITIES]
        self.app.push_screen(
            PickerModal(f"Availability of {email}", choices, current=user.availability), chosen
        )

    def action_role(self) -> None:
        user = self.user
        if user is not None:
            role = "agent" if user.is_admin else "admin"
            email = user.email
            self.write(lambda s, a: users.set_role(s, a, email, role), f"{email} is now {role}.")

    def action_active(self) -> None:
        user = self.user
        if user is None:
            return
        email, active = user.email, not user.active
        verb = "Activate" if active else "Deactivate"

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda s, a: users.set_active(s, a, email, active),
                           f"{verb}d {email}.")  # fmt: skip

        self.app.push_screen(ConfirmModal(safe_text(f"{verb} {email}?", one_line=True)), answered)

    def action_os_login(self) -> None:
        user = self.user
        if user is None:
            return
        email = user.email
        fields = [Field("os_user", "OS login", user.os_user or "", placeholder="empty: none")]
        self.app.push_screen(
            FormModal(f"OS login of {email}", fields, lambda v: lambda s, a: users.set_os_user(
                s, a, email, v["os_user"]), form_id="os-login-form"),
            self._after_form(f"OS login of {email} saved."),
        )  # fmt: skip

    def action_key_add(self) -> None:
        user = self.user
        if user is None:
            return
        email = user.email
        fields = [Field("key", "Public key", placeholder="ssh-ed25519 AAAA… bob@laptop")]
        self.app.push_screen(
            FormModal(f"SSH key for {email}", fields, lambda v: lambda s, a: ssh_keys.add(
                s, a, email, v["key"]), form_id="key-form",
                hint="Paste one line of a .pub file · ctrl+s saves · escape closes"),
            self._after_form(f"SSH key added for {email}."),
        )  # fmt: skip

    def action_key_remove(self) -> None:
        user = self.user
        if user is None or self.view is None:
            return
        email = user.email
        if not self.view.keys:
            self.show_message(self.view.keys_refusal or f"{email} has no SSH key.")
            return
        choices = [
            (str(k.id), safe_text(f"{k.id}  {k.key_type}  {k.fingerprint}  {k.comment}",
                                  one_line=True))
            for k in self.view.keys
        ]  # fmt: skip

        def chosen(key_id: str | None) -> None:
            if not key_id:
                return

            def answered(yes: bool | None) -> None:
                if yes:
                    self.write(lambda s, a: ssh_keys.remove(s, a, email, int(key_id)),
                               f"SSH key {key_id} of {email} removed.")  # fmt: skip

            self.app.push_screen(
                ConfirmModal(f"Remove SSH key {key_id} of {email}? It stops working at once."),
                answered,
            )

        self.app.push_screen(PickerModal(f"Remove an SSH key of {email}", choices), chosen)


def visible_to(session: Any, actor: UserRecord) -> bool:
    """Everyone may see the team and set their own availability."""
    return users.get(session, actor, actor.email).active


def palette_commands(app: Any) -> list[PaletteCommand]:
    return [
        PaletteCommand("team: open", "Users, roles, availability, SSH keys",
                       lambda: app.push_screen(TeamScreen())),
        PaletteCommand("team: add user", "Add a user", lambda: app.push_screen(
            TeamScreen(then="create"))),
        PaletteCommand("me: next availability", "available → away → offline (F3)",
                       lambda: cycle_availability(app)),
    ]  # fmt: skip
