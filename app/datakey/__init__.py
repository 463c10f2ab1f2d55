"""Data-key management: re-encrypting stored PHI under the newest key."""
