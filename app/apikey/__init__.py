"""API keys: one clinic each, scoped, stored only as a hash."""
