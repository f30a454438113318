"""F75: who really sent an inbound message. SPF, DKIM and DMARC computed against the configured
DNS, or SPF taken from a trusted relay's Authentication-Results; then the spoofing and lookalike
warnings. A computation library: no session, no database; `message.check_message` is the entry
point a job calls with the stored raw bytes and the envelope, and stores what it returns.

Modules in the order one message moves through them: relay_results (which upstream header is
believed), sender_policy (SPF with pyspf), signatures (DKIM with dkimpy), dmarc_policy (the
`_dmarc` record and organisational domains), alignment (the DMARC verdict), message (the entry
point), sender_warning (possible spoofing, lookalike senders).
"""
