"""Search (F47): a query language over conversations, answered by the database's full-text index.

    printer "on fire" from:carol@customer.test -tag:spam status:open after:2026-11-01

query       the words typed → terms and filters, with errors that say what to change
filters     status, queue, mailbox, assignee, tag, before, after, has → SQL on conversations
fulltext    text terms → one FTS5 MATCH (SQLite) or tsquery (PostgreSQL) string, escaped
snippets    the excerpt of the matching message shown under a result
results     search(): runs it all, newest first, one page at a time by key
indexer     PostgreSQL: the search vectors of new messages, filled after their commit

Text terms match messages: a conversation is found when one of its messages holds every
positive term (from: and to: look at its sender and recipients only), and none of its
messages holds a negated one. Filters look at the conversation itself; before:/after: at its
last activity, in the searcher's timezone.
"""
