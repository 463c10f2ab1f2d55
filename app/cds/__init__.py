"""CDS Hooks 2.0: discovery, patient-view and appointment-book services, cards, feedback."""
