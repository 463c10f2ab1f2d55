"""Tamper-evident audit trail: canonical hashing, the append-only chain and its verifier."""
