"""Background delivery: the outbox of notices, sent once with retries; the email and its QR code."""
