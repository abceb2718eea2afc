"""The chaos suite's short form (`pagos-dev chaos --corta`): faults while commands flow, then the
audit. The full form is `make chaos`."""

from __future__ import annotations

import pytest

from pagos_dev.tools import chaos

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


async def test_caos_corto_nada_se_pierde_nada_se_paga_dos_veces(tmp_path, broker_embebido):
    """On the broker the session asked for (`--broker pulsar`: its own Apache Pulsar standalone)."""
    informe = await chaos.correr(chaos.ChaosConfig.corta(), tmp_path, progreso=lambda _: None, broker=broker_embebido)
    print("\n" + chaos.tabla(informe))
    assert chaos.violaciones(informe) == []
    assert informe["quietud_alcanzada"]
    assert informe["comandos_publicados"] == 1700
    assert informe["pagos_perdidos"] == 0
    assert informe["pagados_dos_veces"] == 0
    assert informe["malformados_en_dlq"] == 20
    assert informe["bien_formados_en_dlq"] == 0  # an outage never dead-letters a well-formed command
    assert informe["ni_finales_ni_senalados"] == 0
    assert [f["sin_evento"] for f in informe["fallas"]] == [0] * len(chaos.ChaosConfig.corta().fallas)
    assert informe["workers_vivos_al_final"] == 2
