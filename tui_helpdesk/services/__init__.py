"""Services: every business rule, permission check and audit entry, one module a subject."""
