"""Services: every business rule, permission check and audit entry lives here, one module a subject."""
