"""Benchmarks shipped with the service (`pagos-worker bench …`): figures, not tests."""
