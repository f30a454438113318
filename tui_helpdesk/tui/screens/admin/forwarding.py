"""Step-by-step forwarding instructions (F11): how mail to a mailbox's address reaches its alias.

Plain text built from the mailbox record and the settings: shown on the alias screen and easy
to test. The addresses come from the services (validated), never from mail.
"""

from __future__ import annotations

from tui_helpdesk.config import Settings
from tui_helpdesk.records import MailboxRecord

PROVIDERS = ("google", "microsoft", "mta")
TITLES = {"google": "Google Workspace", "microsoft": "Microsoft 365", "mta": "Postfix / other MTA"}


def google_workspace(mailbox: MailboxRecord) -> str:
    address, alias = mailbox.email_address, mailbox.alias
    return f"""\
1. Sign in to admin.google.com as a super administrator.
2. Go to Apps > Google Workspace > Gmail > Routing.
3. Next to "Routing", click Configure (or Add another rule) and name it
   "helpdesk {address}".
4. Messages to affect: Inbound. Envelope filter: "Only affect specific envelope
   recipients" > Single recipient: {address}
5. Also deliver to: Add more recipients > Add > {alias}
6. Save. Changes can take up to an hour to apply.
7. Back here, press t to send a test mail: it goes to {address} and must come back
   through the rule to the alias ("binding" turns to checked).

A Google group or a single user works too: in the user's Gmail settings >
Forwarding and POP/IMAP > Add a forwarding address > {alias}. Gmail mails a
confirmation code to the alias: it arrives here as a conversation."""


def microsoft_365(mailbox: MailboxRecord) -> str:
    address, alias = mailbox.email_address, mailbox.alias
    return f"""\
1. Sign in to admin.exchange.microsoft.com (Exchange admin center).
2. Go to Mail flow > Rules > Add a rule > Create a new rule.
3. Name: "helpdesk {address}".
   Apply this rule if: The recipient > is this person > {address}
4. Do the following: Add recipients > to the Bcc box > {alias}
   (or "Redirect the message to" when no copy should stay in Microsoft 365).
5. Save, then enable the rule.
6. Outbound forwarding to outside addresses is off by default: in Microsoft
   Defender > Policies > Anti-spam > Anti-spam outbound policy, set "Automatic
   forwarding rules" to On (for the whole tenant or for {address}).
7. Back here, press t to send a test mail: it goes to {address} and must come back
   through the rule to the alias ("binding" turns to checked).

For a shared mailbox: Microsoft 365 admin center > Teams & groups > Shared
mailboxes > {address} > Email forwarding > Forward all email to {alias}."""


def plain_mta(mailbox: MailboxRecord, settings: Settings) -> str:
    address, alias = mailbox.email_address, mailbox.alias
    local, platform = mailbox.local_part, settings.mail.platform_domain
    smtp = f"[{settings.smtp.hostname}]:{settings.smtp.port}"
    return f"""\
Postfix, virtual alias (the domain {mailbox.domain} is a virtual domain):
1. Add this line to /etc/postfix/virtual:
     {address}    {alias}
2. Run: postmap /etc/postfix/virtual && postfix reload

Postfix, transport (only when the MX of {platform} does not lead to the
helpdesk, e.g. it runs beside Postfix): add to /etc/postfix/transport
     {platform}    smtp:{smtp}
   then: postmap /etc/postfix/transport && postfix reload

Local domain (/etc/aliases):
1. Add this line to /etc/aliases:
     {local}: {alias}
2. Run: newaliases

Then press t here to send a test mail through the new rule."""


def instructions(mailbox: MailboxRecord, settings: Settings, provider: str) -> str:
    if provider == "google":
        return google_workspace(mailbox)
    if provider == "microsoft":
        return microsoft_365(mailbox)
    return plain_mta(mailbox, settings)
