"""Mail: parsing, the SMTP ingest server, outbound sending, DNS checks. No database, no UI."""
