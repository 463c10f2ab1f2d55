"""Screenings: submit, read and list; questionnaires."""
