"""Admin screens: stats, audit log, worker status (and the set-up screens of issue 10)."""
