"""Admin screens: mailboxes, domains and organisation settings, queues and team (issue 10)."""
