"""Physicians and clinic admins: users, passwords, sign-in, sessions and personal tokens."""
