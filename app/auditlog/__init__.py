"""The audit trail API: a clinic reads its own audit events."""
