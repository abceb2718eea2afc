"""The chaos suite's skewed clock reaches every module of the service that reads the host's time."""

from __future__ import annotations

import subprocess
import sys

SONDA = """
from pagos_dev.reloj_desfasado import desfasar
desfasar(-300)
from datetime import UTC, datetime
from pagos_worker.adapters.stripe import adapter
from pagos_worker.application import dlq, handlers
for modulo in (adapter, handlers, dlq):
    print(round((modulo.utcnow() - datetime.now(UTC)).total_seconds()))
"""


def test_un_proceso_desfasado_ve_su_reloj_desfasado_en_todo_el_servicio():
    salida = subprocess.run(  # noqa: S603 - this interpreter, this test's own code
        [sys.executable, "-c", SONDA], capture_output=True, text=True, check=True, timeout=120
    )
    assert salida.stdout.split() == ["-300", "-300", "-300"]


def test_segundos_que_no_son_un_numero_son_un_error_de_uso():
    orden = [sys.executable, "-m", "pagos_dev.reloj_desfasado", "cinco", "--help"]
    salida = subprocess.run(orden, check=False, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert salida.returncode == 2
    assert "SEGUNDOS debe ser un número" in salida.stderr
