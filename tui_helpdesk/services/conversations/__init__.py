"""Conversations (F42-F47): who may see them, their lists, threads, actions and read marks.

visibility  the one rule of who sees a conversation (every read and action goes through it)
fields      statuses, priorities and tags: the values a conversation's fields may take
rows        one list row per conversation, as the lists, search and actions return it
views       the sidebar's lists (mine, unassigned, open, pending, closed, queues, mailboxes)
            and their counts
listing     pages of a list by key: first, last, after, before, and the page around a row
thread      one conversation with its messages, oldest first
sender_auth who sent each inbound message, as the F75 checker stored it
actions     assign, transfer, status, priority and tags, one conversation or many at once
reads       per-user read marks (what makes a row unread)
"""
