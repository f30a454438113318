"""Step-by-step forwarding instructions (F11): how mail to a mailbox's address reaches its alias.

Plain text built from the mailbox record and the settings: shown on the alias screen and easy
to test. The addresses come from the services (validated), never from mail. One step a line,
unwrapped: the screen wraps it to its width.
"""

from __future__ import annotations

from tui_helpdesk.config import Settings
from tui_helpdesk.records import MailboxRecord

PROVIDERS = ("google", "microsoft", "mta")
TITLES = {"google": "Google Workspace", "microsoft": "Microsoft 365", "mta": "Postfix / other MTA"}


def _test_step(address: str) -> str:
    return (f"Back here, press t to send a test mail: it goes to {address} and must come back "
            "through the rule to the alias (the binding then shows ok).")  # fmt: skip


def _numbered(steps: list[str]) -> str:
    return "\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))


def google_workspace(mailbox: MailboxRecord) -> str:
    address, alias = mailbox.email_address, mailbox.alias
    steps = [
        "Sign in to admin.google.com as a super administrator.",
        "Go to Apps > Google Workspace > Gmail > Routing.",
        f'Next to "Routing", click Configure (or Add another rule); name it "helpdesk {address}".',
        'Messages to affect: Inbound. Envelope filter: "Only affect specific envelope '
        f'recipients" > Single recipient: {address}',
        f"Also deliver to: Add more recipients > Add > {alias}",
        "Save. Changes can take up to an hour to apply.",
        _test_step(address),
    ]
    return _numbered(steps) + (
        "\n\nFor a single user instead: Gmail settings > Forwarding and POP/IMAP > Add a "
        f"forwarding address > {alias}. Gmail mails a confirmation code to the alias: it "
        "arrives here as a conversation."
    )


def microsoft_365(mailbox: MailboxRecord) -> str:
    address, alias = mailbox.email_address, mailbox.alias
    steps = [
        "Sign in to admin.exchange.microsoft.com (Exchange admin center).",
        "Go to Mail flow > Rules > Add a rule > Create a new rule.",
        f'Name it "helpdesk {address}". Apply this rule if: The recipient > is this person > '
        f"{address}",
        f"Do the following: Add recipients > to the Bcc box > {alias} (or Redirect the message "
        "to, when no copy should stay in Microsoft 365).",
        "Save, then enable the rule.",
        "Forwarding outside the tenant is off by default: in Microsoft Defender > Policies > "
        'Anti-spam > Anti-spam outbound policy, set "Automatic forwarding rules" to On.',
        _test_step(address),
    ]
    return _numbered(steps) + (
        "\n\nFor a shared mailbox: Microsoft 365 admin center > Teams & groups > Shared "
        f"mailboxes > {address} > Email forwarding > Forward all email to {alias}."
    )


def plain_mta(mailbox: MailboxRecord, settings: Settings) -> str:
    address, alias = mailbox.email_address, mailbox.alias
    platform = settings.mail.platform_domain
    smtp = f"[{settings.smtp.hostname}]:{settings.smtp.port}"
    return "\n".join([
        f"Postfix, {mailbox.domain} as a virtual alias domain:",
        "1. Add this line to /etc/postfix/virtual:",
        f"     {address}    {alias}",
        "2. Run: postmap /etc/postfix/virtual && postfix reload",
        "",
        f"Postfix transport, only when the MX of {platform} does not lead to the helpdesk "
        "(it runs beside Postfix): add to /etc/postfix/transport",
        f"     {platform}    smtp:{smtp}",
        "   then: postmap /etc/postfix/transport && postfix reload",
        "",
        "A local domain, /etc/aliases (then run newaliases):",
        f"     {mailbox.local_part}: {alias}",
        "",
        _test_step(address),
    ])  # fmt: skip


def instructions(mailbox: MailboxRecord, settings: Settings, provider: str) -> str:
    if provider == "google":
        return google_workspace(mailbox)
    if provider == "microsoft":
        return microsoft_365(mailbox)
    return plain_mta(mailbox, settings)
