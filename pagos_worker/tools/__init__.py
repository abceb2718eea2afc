"""Operator tools shipped with the service: the chaos suite and the benchmarks (`pagos-worker chaos`,
`pagos-worker bench …`). They report figures; the tests assert behaviour."""
