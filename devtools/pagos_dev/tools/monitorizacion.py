"""deploy/prometheus/prometheusrule.yaml, generated from the alert rules (pagos-worker.rules.yaml):
the same groups wrapped in a PrometheusRule for the Prometheus Operator. `make contract` writes it
with the contract's documents; tests/unit/test_monitorizacion.py holds the committed file to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REGLAS = "deploy/prometheus/pagos-worker.rules.yaml"
PROMETHEUSRULE = "deploy/prometheus/prometheusrule.yaml"

_CABECERA = """\
# GENERATED from pagos-worker.rules.yaml: the same groups, for the Prometheus Operator. Do not edit:
# change the rules file, then run `make contract` (`pagos-dev contract`; a test fails while the
# two differ). Why each alert is as it is: the rules file's comments. The runbook_url base below is
# replaced by the setting in kustomization.yaml.
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer expressions) as literal blocks, as a person would write them."""


def _str(dumper: yaml.SafeDumper, valor: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", valor, style="|" if "\n" in valor else None)


_Dumper.add_representer(str, _str)


def grupos(raiz: Path) -> list[dict[str, Any]]:
    """The rules file's groups, as read from the checkout at `raiz`."""
    grupos_: list[dict[str, Any]] = yaml.safe_load((raiz / REGLAS).read_text(encoding="utf-8"))["groups"]
    return grupos_


def prometheusrule(raiz: Path) -> str:
    """The text prometheusrule.yaml must have for the rules file of the checkout at `raiz`."""
    regla = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "pagos-worker",
            "labels": {"app.kubernetes.io/name": "pagos-worker", "app.kubernetes.io/part-of": "pagos"},
        },
        "spec": {"groups": grupos(raiz)},
    }
    return _CABECERA + yaml.dump(regla, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
