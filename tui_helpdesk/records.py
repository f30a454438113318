"""Frozen dataclasses that leave the services: what the TUI and the CLI see (never ORM objects)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Records (nested) → plain JSON types; datetimes as ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class OrganisationRecord:
    id: int
    name: str
    timezone: str
    language: str
    created_at: datetime
    autoresponders_enabled: bool = True  # F19 global switch


@dataclass(frozen=True)
class DomainRecord:
    id: int
    organisation_id: int
    domain: str
    created_at: datetime


@dataclass(frozen=True)
class UserRecord:
    id: int
    organisation_id: int
    email: str
    name: str
    first_name: str
    last_name: str
    role: str
    availability: str
    active: bool
    os_user: str | None
    created_at: datetime
    timezone: str | None = None  # None: the organisation's (users.timezone_of resolves it)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class UserKeyRecord:
    """An SSH key of a user; `public_key` is the `type base64` pair for authorized_keys."""

    id: int
    user_email: str
    user_active: bool
    key_type: str
    fingerprint: str
    comment: str
    public_key: str
    created_at: datetime


@dataclass(frozen=True)
class MailboxRecord:
    id: int
    organisation_id: int
    email_address: str
    alias: str
    display_name: str
    local_part: str
    domain: str
    timezone: str
    language: str
    description: str
    department: str
    responsible_user: str | None
    status: str
    queues: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    last_inbound_at: datetime | None
    # F16: status is pending until verified; binding_checked_at is when a test mail last came
    # back through the forwarding rule; silent when nothing arrived for 24 hours
    verified_at: datetime | None = None
    binding_checked_at: datetime | None = None
    silent: bool = False
    private: bool = False  # F21: only `granted` users see its conversations
    granted: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()  # F20: only these may send from it; () = no restriction
    signature: bool = False  # F18: it has one (mailboxes.signature_of reads it)
    close_notice: bool = True  # F45: closing a conversation mails the customer


@dataclass(frozen=True)
class QueueMailboxRecord:
    mailbox_id: int
    email_address: str
    alias: str
    status: str
    is_default: bool


@dataclass(frozen=True)
class QueueMemberRecord:
    user_id: int
    email: str
    name: str
    role: str
    availability: str


@dataclass(frozen=True)
class QueueRecord:
    id: int
    organisation_id: int
    name: str
    description: str
    colour: str
    assignment_rule: str
    default_mailbox: str | None
    mailboxes: tuple[QueueMailboxRecord, ...]
    members: tuple[QueueMemberRecord, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ListKey:
    """Where a row sits in every conversation list: newest first, ties broken by id."""

    last_message_at: datetime
    id: int


@dataclass(frozen=True)
class ConversationRecord:
    """One row of a conversation list. `unread` is for the user who read the list."""

    id: int
    subject: str
    status: str
    priority: str
    mailbox: str | None
    queue: str | None
    contact: str | None
    contact_name: str
    assignee: str | None
    tags: tuple[str, ...]
    message_count: int
    previous_conversation_id: int | None
    created_at: datetime
    last_message_at: datetime
    unread: bool = False
    flagged: str = ""  # F75: "spoof" | "lookalike" when a message of it was flagged, else ""

    @property
    def key(self) -> ListKey:
        return ListKey(self.last_message_at, self.id)


@dataclass(frozen=True)
class ConversationView:
    """A list the sidebar offers: mine, unassigned, open, pending, closed, all, queue, mailbox.

    `queue_id` / `mailbox_id` name the queue or mailbox of those two kinds (open conversations
    in it); `label` is what the sidebar shows.
    """

    kind: str
    label: str = ""
    queue_id: int | None = None
    mailbox_id: int | None = None


# The view a TUI starts in (and its start-up cache holds the first page of).
ALL_OPEN = ConversationView("open", "All open")


@dataclass(frozen=True)
class ViewCount:
    """`count` conversations in the view; `more` when it holds more than were counted."""

    view: ConversationView
    count: int
    more: bool = False


@dataclass(frozen=True)
class ConversationPage:
    """Consecutive rows of one view, newest first.

    has_newer / has_older say whether rows exist before the first / after the last one;
    `anchor` is the index in `rows` of the row a page_containing call asked for (or of the
    row that took its place when it left the view), else None.
    """

    rows: tuple[ConversationRecord, ...]
    has_newer: bool
    has_older: bool
    anchor: int | None = None

    @property
    def first_key(self) -> ListKey | None:
        return self.rows[0].key if self.rows else None

    @property
    def last_key(self) -> ListKey | None:
        return self.rows[-1].key if self.rows else None


@dataclass(frozen=True)
class SearchHit:
    """A conversation found by a search, and why: the newest matching message and an excerpt.

    `highlights` are (start, end) offsets in `snippet` of the words that matched; the snippet
    is plain text from mail (clean it before display, never treat it as markup).
    """

    conversation: ConversationRecord
    message_id: int | None
    snippet: str
    highlights: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SearchCursor:
    """Where the next page of a search starts: after the newest matching message of the last
    hit shown (searches with words), or after its list key (searches with filters only)."""

    message_id: int | None = None
    key: ListKey | None = None


@dataclass(frozen=True)
class SearchPage:
    """Hits newest first; `next` is None on the last page."""

    hits: tuple[SearchHit, ...]
    next: SearchCursor | None


@dataclass(frozen=True)
class ActionResult:
    """One conversation's outcome in a (bulk) action: the row after it, or why it was refused."""

    conversation_id: int
    ok: bool
    conversation: ConversationRecord | None = None
    error: str | None = None  # the HelpdeskError kind: invalid, not_found, permission, ...
    message: str = ""


@dataclass(frozen=True)
class AttachmentRecord:
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    disposition: str


@dataclass(frozen=True)
class MessageRecord:
    id: int
    direction: str
    kind: str
    message_id: str | None
    subject: str
    from_address: str
    from_name: str
    to: str
    cc: str
    sent_at: datetime | None
    received_at: datetime
    text_body: str
    raw_size: int
    raw_sha256: str
    defects: tuple[str, ...]
    attachments: tuple[AttachmentRecord, ...]
    # our own mail (F73): queued | sending | retrying | sent | failed, and the server's answer
    # to the last attempt; both "" for inbound mail and for what is never sent
    delivery: str = ""
    delivery_error: str = ""
    auth: MessageAuthStatusRecord | None = None  # inbound mail checked by F75; None otherwise


@dataclass(frozen=True)
class ConversationDetail:
    conversation: ConversationRecord
    messages: tuple[MessageRecord, ...]


@dataclass(frozen=True)
class AuditRecord:
    id: int
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


# --- routing, assignment, working hours, autoresponder (added by the routing helper) ---------


@dataclass(frozen=True)
class RoutingConditionRecord:
    field: str  # sender_address | sender_domain | subject | body | recipient | header:<Name>
    op: str  # equals | contains | matches
    value: str


@dataclass(frozen=True)
class RoutingRuleRecord:
    id: int
    name: str
    position: int  # 1 = evaluated first
    enabled: bool
    match: str  # all | any
    conditions: tuple[RoutingConditionRecord, ...]
    queue: str | None
    priority: str | None
    tag: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RuleConditionResult:
    """One condition of a rule tried on a sample message (routing.try_rule)."""

    field: str
    op: str
    value: str
    matched: bool


@dataclass(frozen=True)
class RuleTestRecord:
    """A dry run of a routing rule on a sample message: nothing is stored or sent."""

    rule_id: int
    rule: str
    enabled: bool
    matched: bool  # its conditions hold (all / any as the rule says)
    conditions: tuple[RuleConditionResult, ...]
    queue: str | None  # what the rule would set when it decides
    priority: str | None
    tag: str | None
    deciding_rule: str | None  # the first enabled rule that matches: the one that would decide


@dataclass(frozen=True)
class AssignmentMemberRecord:
    user_id: int
    email: str
    availability: str
    active: bool
    weight: int
    slots: tuple[dict[str, Any], ...]  # {"days": ["mon", ...], "start": "09:00", "end": "13:00"}


@dataclass(frozen=True)
class AssignmentRecord:
    queue_id: int
    queue: str
    rule: str  # round_robin | least_busy | manual | percentage | time
    fallback: str | None  # email of the fallback user
    sticky_days: int
    members: tuple[AssignmentMemberRecord, ...]


@dataclass(frozen=True)
class QueueHoursRecord:
    queue_id: int
    queue: str
    enabled: bool
    timezone: str
    schedule: dict[str, list[list[str]]]  # every day key present, [] when closed
    holidays: tuple[str, ...]
    outside_hours_enabled: bool
    outside_hours_subject: str
    outside_hours_body: str


@dataclass(frozen=True)
class AutoresponderRecord:
    mailbox: str  # the mailbox's email address
    enabled: bool
    subject: str
    body: str
    windows: tuple[dict[str, str], ...]  # {"start": "2026-12-24T00:00", "end": ...} local time
    timezone: str  # the zone the windows are read in (mailbox, else organisation)
    delay_seconds: int
    updated_at: datetime


@dataclass(frozen=True)
class FailedMessageRecord:
    """A message stored raw because processing it failed (F71, F76): what the admin sees."""

    id: int
    conversation_id: int | None
    mailbox: str
    received_at: datetime
    envelope_from: str
    subject: str
    raw_size: int
    error: str


# --- sending (F17, F22, F73) ----------------------------------------------------------------


@dataclass(frozen=True)
class OutboxJobRecord:
    """One outgoing mail or webhook delivery, as `outbox list` shows it (never its bytes)."""

    id: int
    kind: str
    status: str
    mailbox: str | None
    recipients: tuple[str, ...]  # the envelope recipients; a webhook's URL
    conversation_id: int | None
    attempts: int
    next_attempt_at: datetime
    last_error: str
    claimed_by: str
    event: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class TransportRecord:
    """How a mailbox sends (F17): the platform relay, or its own server. The password is
    never in a record: only whether one is set, and its last two characters."""

    mailbox: str
    platform: bool
    host: str
    port: int | None
    security: str
    username: str
    password: str  # "" (none) or masked: "****" and at most the last 2 characters


@dataclass(frozen=True)
class WebhookRecord:
    """Where a mailbox's events go (F22); the secret masked like a password."""

    mailbox: str
    url: str  # "" when off
    secret: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class VerificationRecord:
    """Where a mailbox's verification stands (F16), after a code was entered or sent.

    `verified` False after `mailbox verify` means the code was wrong: `message` says so and how
    many tries are left (`tries_left`) before verification locks until `locked_until`."""

    mailbox: str
    verified: bool
    verified_at: datetime | None
    code_sent_at: datetime | None
    code_expires_at: datetime | None
    tries_left: int
    locked_until: datetime | None
    message: str


@dataclass(frozen=True)
class BindingTestRecord:
    """A test mail sent to a mailbox's address to check its forwarding rule (F16)."""

    mailbox: str
    sent_at: datetime
    returned_at: datetime | None  # when it came back to the alias; None until then
    binding_checked_at: datetime | None  # the last time any test came back


@dataclass(frozen=True)
class SignatureRecord:
    """F18: the block appended to the mailbox's mail; placeholders as typed."""

    mailbox: str
    text: str
    html: str


@dataclass(frozen=True)
class CloseNoticeRecord:
    """F45: what closing a conversation of the mailbox mails to the customer."""

    mailbox: str
    enabled: bool
    text: str  # the template in use (the built-in one unless `custom`)
    custom: bool


@dataclass(frozen=True)
class SentRecord:
    """What a reply, forward, new mail or internal note added to a conversation: the stored
    message (our own, direction outbound, or a note) and the outbox job sending it."""

    conversation_id: int
    message: MessageRecord
    outbox_job_id: int | None  # None for a note, which is never sent


@dataclass(frozen=True)
class DomainCheckRecord:
    """One DNS check of `domain check` (F2): what is published and what to publish instead."""

    domain: str
    check: str  # mx | spf | dkim | dmarc
    status: str  # pass | fail | missing | temperror
    name: str  # the DNS name looked at
    found: tuple[str, ...]  # the records found there, as published
    publish: str  # the zone-file line to publish; "" when nothing needs to change
    explanation: str


@dataclass(frozen=True)
class SpfCheckRecord:
    """SPF of one inbound message (F75), computed here or believed from a trusted relay."""

    result: str  # pass | fail | softfail | neutral | none | temperror | permerror
    domain: str  # whose SPF policy: the MAIL FROM domain, or the HELO name for a null sender
    identity: str  # mailfrom | helo
    ip: str  # the client address the policy was asked about ("" when taken from a relay)
    source: str  # "computed", or "relay <authserv-id>" when a trusted relay's header was used
    explanation: str


@dataclass(frozen=True)
class DkimSignatureRecord:
    """One DKIM-Signature of an inbound message, verified (F75)."""

    result: str  # pass | fail | temperror | permerror
    domain: str  # the signing domain (d=)
    selector: str  # s=
    explanation: str


@dataclass(frozen=True)
class DmarcCheckRecord:
    """The DMARC verdict of an inbound message: does anything that passed align with From?"""

    result: str  # pass | fail | none | temperror | permerror
    from_domain: str
    policy_domain: str  # where the _dmarc record was found ("" when none)
    policy: str  # none | quarantine | reject ("" when no record)
    spf_aligned: bool  # SPF passed for a domain aligned with From
    dkim_aligned: tuple[str, ...]  # signing domains of passing signatures aligned with From
    explanation: str


@dataclass(frozen=True)
class MessageAuthRecord:
    """Who really sent an inbound message: SPF, every DKIM signature, DMARC (F75)."""

    from_address: str
    from_domain: str
    spf: SpfCheckRecord
    dkim: tuple[DkimSignatureRecord, ...]
    dmarc: DmarcCheckRecord
    ignored_headers: tuple[str, ...]  # Authentication-Results not believed, each with why


@dataclass(frozen=True)
class SenderWarningRecord:
    """The warning an agent sees before answering (F75): possible spoofing or a lookalike.

    One per flagged message of a conversation (inbound_auth.warnings.conversation_warnings)."""

    message_id: int
    level: str  # spoof | lookalike
    reason: str  # why, in words (several reasons joined by "; ")


@dataclass(frozen=True)
class MessageAuthStatusRecord:
    """What is stored about who sent an inbound message (F75), as `conversation show` gives it.

    `status` is queued | checking | retrying until the worker's check ends (done); results are
    "" until then."""

    status: str
    spf: str
    dkim: str  # the best signature's result; "none" when the message is not signed
    dmarc: str
    from_domain: str
    spf_domain: str
    dkim_domains: tuple[str, ...]
    signatures: tuple[DkimSignatureRecord, ...]
    explanation: str
    warning: str  # none | lookalike | spoof
    warning_reason: str
    ignored_headers: tuple[str, ...]
    attempts: int
    checked_at: datetime | None


# --- the TUI's conversation screen: drafts, message source (added by tui-conversation) ---------


@dataclass(frozen=True)
class DraftRecord:
    """An unsent answer from the composer; one per conversation and user (F43)."""

    conversation_id: int
    mode: str  # reply | reply_all | forward | note
    to: str
    cc: str
    body: str
    updated_at: datetime


@dataclass(frozen=True)
class ComposerContext:
    """What the composer shows before a word is typed: who the answer goes to, the signature
    the mailbox adds, and the draft kept from last time (None when there is none)."""

    conversation_id: int
    mailbox: str  # the address the answer is sent from ("" when the conversation has none)
    reply_to: str  # the customer's address a reply goes to ("" when there is no mail yet)
    signature: str
    draft: DraftRecord | None
    quoting: str = ""  # whose mail a reply quotes below the signature: "Carol, 2026-11-22 11:58"


@dataclass(frozen=True)
class MessageSourceRecord:
    """A message as it came: every header field in order, and the raw bytes (None for an
    internal note, which has no source)."""

    message_id: int
    headers: tuple[tuple[str, str], ...]
    raw: bytes | None


# --- admin screens: stats, audit, workers (F60, F61, F76; added by the admin-ops helper) ------


@dataclass(frozen=True)
class QueueStatsRecord:
    """One queue's numbers (F60); queue_id None is the conversations in no queue.
    Medians in seconds over the period (None: nothing to measure)."""

    queue_id: int | None
    queue: str
    open: int
    unassigned: int
    received_today: int
    resolved_today: int
    median_first_response: float | None
    median_resolution: float | None


@dataclass(frozen=True)
class AgentStatsRecord:
    """One agent over the period: conversations they resolved, and the median first response
    of the conversations assigned to them (seconds)."""

    user_id: int
    name: str
    email: str
    handled: int
    median_first_response: float | None


@dataclass(frozen=True)
class DayStatsRecord:
    day: str  # YYYY-MM-DD in the organisation's zone
    received: int  # conversations created that day
    resolved: int  # conversations closed that day


@dataclass(frozen=True)
class StatsRecord:
    """The stats screen and `stats --json` (F60); spoofing: mailbox → messages flagged."""

    generated_at: datetime
    timezone: str
    period_days: int
    queues: tuple[QueueStatsRecord, ...]
    agents: tuple[AgentStatsRecord, ...]
    days: tuple[DayStatsRecord, ...]
    spoofing: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries to show: actor (part of the email), subject (`mailbox` or
    `mailbox:3`), and a time range [since, until)."""

    actor: str = ""
    subject: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditKey:
    """Where an audit page starts: the list is newest first, ties by id."""

    created_at: datetime
    id: int


@dataclass(frozen=True)
class WorkerRecord:
    """A worker as the database knows it (F76): down when its heartbeat is stale."""

    name: str
    pid: int
    address: str
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    up: bool
    accepted_total: int
    errors_total: int
    last_accepted_at: datetime | None
    last_error: str
    accepted_last_minute: int = 0  # this worker's own, as of its last heartbeat
    accepted_last_hour: int = 0


@dataclass(frozen=True)
class WorkerOverviewRecord:
    """The worker status screen: workers, mail accepted lately, the outbox, errors."""

    workers: tuple[WorkerRecord, ...]
    accepted_last_minute: int
    accepted_last_hour: int
    outbox_queued: int
    outbox_failed: int
    outbox_errors: tuple[str, ...]  # the last errors of failed or retrying jobs, newest first
    failed_messages: tuple[FailedMessageRecord, ...]


@dataclass(frozen=True)
class ReprocessRecord:
    """A failed message processed again: the row it was, the rows it became, any new error."""

    message_id: int
    new_message_ids: tuple[int, ...]
    conversation_ids: tuple[int, ...]
    error: str  # "" when it went through
