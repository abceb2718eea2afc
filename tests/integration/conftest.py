"""How many simulator answers were checked against Stripe's OpenAPI description in this run."""

from __future__ import annotations

import pytest

from tests.stripe_spec import SPEC, validados


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if validados["cuerpos"]:
        terminalreporter.write_line(f"cuerpos del simulador validados contra {SPEC.name}: {validados['cuerpos']}")
    elif not SPEC.is_file():
        terminalreporter.write_line(f"sin {SPEC}: los cuerpos del simulador no se validaron contra la spec")
