"""Ports: one Protocol per thing the application needs from the outside world."""
