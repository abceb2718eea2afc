"""A Stripe-compatible HTTP simulator: stands for Stripe (an external system) in tests and `make run`."""
