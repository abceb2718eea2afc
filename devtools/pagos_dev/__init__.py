"""Development tooling for pagos-worker: the embedded servers (PostgreSQL, pulsar-lite), the
Stripe-compatible simulator, an in-process simulated gateway, the benchmark and the chaos suite.

It depends on the service (`pagos_worker`), never the other way round, and is not part of the
production wheel or image."""
