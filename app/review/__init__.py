"""Physician review: the queue, the detail page, sign-off (append-only, If-Match guarded)."""
