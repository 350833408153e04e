"""Delivery: the ledger (what ran, what was delivered), the mailer (SMTP or outbox)."""
