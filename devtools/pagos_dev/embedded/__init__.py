"""Embedded servers for development and tests: PostgreSQL, pulsar-lite, the Stripe simulator."""
