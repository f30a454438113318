"""Who gets a new conversation (F32).

- pickers: the pure strategies (round robin, least busy, percentage, time) on Candidates
- assigner: the queue's members read from the database, sticky routing, fallback
- admin: the assignment settings of a queue (rule, weights, slots, sticky days, fallback)
"""

from tui_helpdesk.services.assignment.admin import get_assignment, set_assignment
from tui_helpdesk.services.assignment.assigner import (
    QueueAssigner,
    choose_assignee,
    locking_reads,
)

__all__ = ["QueueAssigner", "choose_assignee", "get_assignment", "locking_reads", "set_assignment"]
