"""Patient invitation links: one clinic, one subject, one submission, an expiry."""
