"""Candidacy screening service for low-dose ketamine infusion therapy."""

__version__ = "0.1.0"
