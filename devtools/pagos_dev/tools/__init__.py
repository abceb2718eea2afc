"""The chaos suite and the benchmarks (`pagos-dev chaos`, `pagos-dev bench …`), and the cluster of
processes they run. They report figures; the tests assert behaviour."""
