"""Routing rules (F34): which queue, priority and tag an inbound message gets.

- patterns: the regular expressions admins write, bounded before they meet mail
- conditions: what a rule may test, validated
- rules: matching and the inbound decision (first match wins)
- admin: the rule services (add, list, update, move, delete, test on a sample message)
"""

from tui_helpdesk.services.routing.admin import (
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    move_rule,
    try_rule,
    update_rule,
)
from tui_helpdesk.services.routing.rules import (
    InboundRouting,
    RouteDecision,
    decide,
    default_queue_id,
    load_inbound_routing,
    route_inbound,
)

__all__ = [
    "InboundRouting",
    "RouteDecision",
    "create_rule",
    "decide",
    "default_queue_id",
    "delete_rule",
    "get_rule",
    "list_rules",
    "load_inbound_routing",
    "move_rule",
    "route_inbound",
    "try_rule",
    "update_rule",
]
