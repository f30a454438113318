"""The product's fixed vocabularies, in a module that imports nothing.

The services validate against these; the CLI offers them as choices at start-up without
importing the services (and SQLAlchemy) for every command line.
"""

ROLES = ("admin", "agent")  # a user's global role (F3)
AVAILABILITIES = ("available", "away", "offline")  # only `available` members get work (F32)
MEMBER_ROLES = ("agent", "admin")  # a member's role in one queue (F31)
ASSIGNMENT_RULES = ("round_robin", "least_busy", "manual", "percentage", "time")  # F32
ROUTING_FIELDS = ("sender_address", "sender_domain", "subject", "body", "recipient")  # F34
ROUTING_OPS = ("equals", "contains", "matches")
MATCH_MODES = ("all", "any")  # a rule matches when all / any of its conditions hold
PRIORITIES = ("low", "normal", "high", "urgent")  # of a conversation (F42)
CONVERSATION_STATUSES = ("open", "pending", "closed")  # of a conversation (F42)
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OUTBOX_STATUSES = ("queued", "sending", "retrying", "sent", "failed")  # of an outbox job (F73)
TRANSPORT_SECURITIES = ("none", "starttls", "tls")  # of an outgoing SMTP connection (F17)
WEBHOOK_EVENTS = ("conversation.created", "message.received", "conversation.closed")  # F22
