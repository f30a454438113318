"""The mailbox dialogs (F10, F16-F22): each a FieldForm whose save is one service call.

Builders take what the dialog starts from (a record read by the screen) and return the form;
the services validate, refuse, audit and notify, so nothing here decides what is allowed.
"""

from __future__ import annotations

from typing import Any

from tui_helpdesk.records import (
    AutoresponderRecord,
    MailboxRecord,
    SignatureRecord,
    TransportRecord,
    UserRecord,
    VerificationRecord,
    WebhookRecord,
)
from tui_helpdesk.services import autoresponder, mailboxes, transports, webhooks
from tui_helpdesk.services.mailboxes import MailboxChanges
from tui_helpdesk.services.vocabulary import TRANSPORT_SECURITIES
from tui_helpdesk.tui.modals.field_form import Field, FieldForm, Values

MAILBOX_FIELDS = ("display_name", "local_part", "domain", "timezone", "language", "description",
                  "department", "responsible")  # fmt: skip
LABELS = {"display_name": "Display name", "local_part": "Local part", "domain": "Domain",
          "timezone": "Timezone", "language": "Language", "description": "Description",
          "department": "Department", "responsible": "Responsible"}  # fmt: skip
PLACEHOLDERS = {"display_name": "Support team or {{first_name}} at Acme",
                "local_part": "support", "timezone": "empty: the organisation's",
                "language": "empty: the organisation's",
                "responsible": "a user's email"}  # fmt: skip


def mailbox_form(
    domains: list[str], settings: Any, record: MailboxRecord | None = None
) -> FieldForm:
    """Create (record None) or edit every field of F10 but the alias."""
    start = _start_values(domains, record)
    fields = [
        Field(name, LABELS[name], start[name], placeholder=PLACEHOLDERS.get(name, ""))
        for name in MAILBOX_FIELDS
    ]
    if len(domains) > 1 or (record is None and domains):
        fields[2] = Field("domain", "Domain", start["domain"], kind="choice",
                          choices=tuple(domains))  # fmt: skip
    if record is None:
        title = "New mailbox"
        intro = ("It stays pending until the code mailed to its address is entered. Its alias "
                 "is made on save.")  # fmt: skip
    else:
        title = f"Edit {record.email_address} (the alias {record.alias} never changes)"
        intro = ""

    def save(values: Values):  # type: ignore[no-untyped-def]
        given = {name: str(values[name]).strip() for name in MAILBOX_FIELDS}
        if record is None:
            optional = {k: v for k, v in given.items() if v or k in ("description", "department")}
            return lambda session, actor: mailboxes.create(session, settings, actor, **optional)
        changes = MailboxChanges(**given)
        return lambda session, actor: mailboxes.update(
            session, actor, record.email_address, changes
        )

    return FieldForm(title, fields, save, check=_check, intro=intro, form_id="mailbox-form")


def _check(name: str, value: str) -> object:
    return mailboxes.check_field(name, value)


def _start_values(domains: list[str], record: MailboxRecord | None) -> dict[str, str]:
    if record is None:
        return {name: "" for name in MAILBOX_FIELDS} | {"domain": domains[0] if domains else ""}
    return {
        "display_name": record.display_name, "local_part": record.local_part,
        "domain": record.domain, "timezone": record.timezone, "language": record.language,
        "description": record.description, "department": record.department,
        "responsible": record.responsible_user or "",
    }  # fmt: skip


def verify_form(settings: Any, address: str) -> FieldForm:
    def save(values: Values):  # type: ignore[no-untyped-def]
        return lambda session, actor: mailboxes.verify(
            session, settings, actor, address, str(values["code"])
        )

    intro = (f"Enter the 6-digit code mailed to {address} (it reaches you only once the "
             "address receives mail: set up forwarding first if the mailbox is new).")  # fmt: skip
    fields = [Field("code", "Code", placeholder="123456")]
    return FieldForm(f"Verify {address}", fields, save, reject=_wrong_code, intro=intro,
                     form_id="verify-form")  # fmt: skip


def _wrong_code(result: object) -> tuple[str, str] | None:
    if isinstance(result, VerificationRecord) and not result.verified:
        return ("code", result.message)
    return None


def transport_form(current: TransportRecord) -> FieldForm:
    address = current.mailbox
    fields = [
        Field("platform", "Platform relay", current.platform, kind="switch"),
        Field("host", "Host", current.host, placeholder="smtp.example.com"),
        Field("port", "Port", str(current.port or 587)),
        Field("security", "Security", current.security or "starttls", kind="choice",
              choices=TRANSPORT_SECURITIES),
        Field("username", "Username", current.username),
        Field("password", "Password", "", kind="secret",
              placeholder=f"set: {current.password}" if current.password else "none"),
    ]  # fmt: skip

    def save(values: Values):  # type: ignore[no-untyped-def]
        port = str(values["port"]).strip()
        settings = {
            "platform": bool(values["platform"]), "host": str(values["host"]),
            "port": int(port) if port.isdigit() else 0, "security": str(values["security"]),
            "username": str(values["username"]), "password": str(values["password"]),
        }  # fmt: skip
        return lambda session, actor: transports.set_transport(session, actor, address, **settings)

    intro = (
        "Platform relay on: mail leaves through the helpdesk's relay. Off: through this "
        "server. The password is never shown back; type it again when changing the server."
    )
    return FieldForm(f"Outgoing mail of {address}", fields, save, check=_transport_check,
                     intro=intro, form_id="transport-form")  # fmt: skip


def _transport_check(name: str, value: str) -> object:
    if name == "host" and value.strip():
        return transports.validate_host(value)
    if name == "port":
        return transports.validate_port(int(value) if value.strip().isdigit() else 0)
    return value


def signature_form(current: SignatureRecord) -> FieldForm:
    fields = [Field("text", "Text", current.text, kind="area"),
              Field("html", "HTML", current.html, kind="area")]  # fmt: skip

    def save(values: Values):  # type: ignore[no-untyped-def]
        return lambda session, actor: mailboxes.set_signature(
            session, actor, current.mailbox, text=str(values["text"]), html=str(values["html"])
        )

    intro = ("Appended to every mail sent from the mailbox. Placeholders: {{agent_name}}, "
             "{{agent_email}}, {{first_name}}, {{last_name}}, {{mailbox_name}}, "
             "{{mailbox_address}}. Both empty: no signature.")  # fmt: skip
    return FieldForm(f"Signature of {current.mailbox}", fields, save, intro=intro,
                     form_id="signature-form")  # fmt: skip


def windows_text(record: AutoresponderRecord) -> str:
    return "\n".join(f"{w['start']} {w['end']}" for w in record.windows)


def parse_windows(text: str) -> list[dict[str, str]]:
    """One window a line, "START END"; a line that is not two values is passed on as it is,
    for the service to refuse with its message."""
    windows = []
    for line in text.splitlines():
        parts = line.split()
        if parts:
            windows.append({"start": parts[0], "end": " ".join(parts[1:])})
    return windows


def autoresponder_form(current: AutoresponderRecord) -> FieldForm:
    fields = [
        Field("enabled", "Enabled", current.enabled, kind="switch"),
        Field("subject", "Subject", current.subject, placeholder="Re: {{subject}}"),
        Field("body", "Body", current.body, kind="area"),
        Field("windows", "Windows", windows_text(current), kind="area"),
        Field("delay_seconds", "Delay (s)", str(current.delay_seconds)),
    ]

    def save(values: Values):  # type: ignore[no-untyped-def]
        delay = str(values["delay_seconds"]).strip()
        settings: dict[str, Any] = {
            "enabled": bool(values["enabled"]), "subject": str(values["subject"]),
            "body": str(values["body"]), "windows": parse_windows(str(values["windows"])),
            "delay_seconds": int(delay) if delay.isdigit() else delay,
        }  # fmt: skip
        return lambda session, actor: autoresponder.configure(
            session, actor, current.mailbox, **settings
        )

    intro = (
        f"Windows: one a line, START END in {current.timezone} local time, like "
        "2026-12-24T00:00 2026-12-27T00:00. No window: it answers whenever enabled."
    )
    return FieldForm(f"Autoresponder of {current.mailbox}", fields, save, intro=intro,
                     form_id="autoresponder-form")  # fmt: skip


def _emails(value: object) -> list[str]:
    return [part.strip() for part in str(value).replace(",", " ").split() if part.strip()]


def access_form(record: MailboxRecord) -> FieldForm:
    fields = [
        Field("senders", "Only these send", ", ".join(record.senders),
              placeholder="empty: anyone who may reply"),
        Field("private", "Private", record.private, kind="switch"),
        Field("granted", "Seen only by", ", ".join(record.granted),
              placeholder="emails of the users who see it, when private"),
    ]  # fmt: skip
    address = record.email_address

    def save(values: Values):  # type: ignore[no-untyped-def]
        senders, granted = _emails(values["senders"]), _emails(values["granted"])
        private = bool(values["private"])

        def work(session: Any, actor: UserRecord) -> MailboxRecord:
            mailboxes.set_senders(session, actor, address, senders or None)
            return mailboxes.set_private(session, actor, address, grant=granted if private
                                         else None)  # fmt: skip

        return work

    intro = (
        "Sender restriction (F20) and private access (F21): a private mailbox's "
        "conversations are seen only by the users listed, admins included."
    )
    return FieldForm(f"Who sends from and sees {address}", fields, save, intro=intro,
                     form_id="access-form")  # fmt: skip


def webhook_form(current: WebhookRecord) -> FieldForm:
    fields = [
        Field("url", "URL", current.url, placeholder="https://… (empty: off)"),
        Field("secret", "Secret", "", kind="secret",
              placeholder=f"set: {current.secret} (empty: keep)" if current.secret
              else "16+ characters, signs every event"),
    ]  # fmt: skip

    def save(values: Values):  # type: ignore[no-untyped-def]
        url, secret = str(values["url"]).strip(), str(values["secret"]).strip()
        return lambda session, actor: webhooks.set_webhook(
            session, actor, current.mailbox, url=url or None, secret=secret or None, off=not url
        )

    intro = (
        "POSTed on new conversation, new message and closed (JSON, signed with the "
        "secret in X-Helpdesk-Signature)."
    )
    return FieldForm(f"Webhook of {current.mailbox}", fields, save, check=_webhook_check,
                     intro=intro, form_id="webhook-form")  # fmt: skip


def _webhook_check(name: str, value: str) -> object:
    if name == "url" and value.strip():
        return webhooks.validate_url(value)
    if name == "secret" and value.strip():
        return webhooks.validate_secret(value)
    return value


def summary(record: MailboxRecord) -> list[tuple[str, str]]:
    """The detail lines of a mailbox under the list."""
    return [
        ("alias", record.alias),
        ("timezone", f"{record.timezone} · language {record.language}"),
        ("responsible", record.responsible_user or "nobody"),
        ("department", record.department or "-"),
        ("senders", ", ".join(record.senders) or "anyone who may reply"),
        ("private", ", ".join(record.granted) if record.private else "no"),
        ("signature", "set" if record.signature else "none"),
    ]
