"""Settings that decide who may talk to the service, and what it refuses to start without."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from pagos_worker.adapters.postgres.database import asyncpg_dsn
from pagos_worker.adapters.pulsar.client import PulsarSecurity
from pagos_worker.config import Settings

BASE = {"database_url": "postgresql+asyncpg://u@db/p", "pulsar_url": "pulsar://b:6650"}


def settings(**cambios) -> Settings:
    return Settings(_env_file=None, **{**BASE, **cambios})


TODAS = "0.0.0.0"  # noqa: S104 - the address under test, nothing binds it here


@pytest.mark.parametrize(
    ("host", "publico"),
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        (TODAS, True),
        ("10.1.2.3", True),
        ("pagos.internal", True),
    ],
)
def test_que_es_publico(host, publico):
    assert settings(http_host=host).http_publico() is publico


def test_un_api_publico_sin_tokens_no_arranca():
    assert settings(http_host=TODAS).faltantes(frozenset({"api"})) == ["PAGOS_HTTP_TOKENS"]
    con = settings(http_host=TODAS, http_tokens=SecretStr(f" {'a' * 16} , {'b' * 32} ,"))
    assert con.faltantes(frozenset({"api"})) == []
    assert con.tokens_http() == ["a" * 16, "b" * 32]
    assert settings(http_host=TODAS, http_tokens=SecretStr(" , ")).faltantes(frozenset({"api"}))


def test_la_api_sola_no_necesita_el_broker():
    sin_broker = settings(pulsar_url=None)
    assert sin_broker.faltantes(frozenset({"api"})) == []
    for roles in ({"worker"}, {"relay"}, {"api", "relay"}):
        assert "PAGOS_PULSAR_URL" in sin_broker.faltantes(frozenset(roles), pasarela_propia=True), roles


@pytest.mark.parametrize("roles", [{"worker"}, {"relay"}, {"worker", "relay", "api"}])
def test_quien_recupera_pagos_necesita_stripe(roles):
    """The worker pays; the relay runs the reconciler and the reconciliation, which call Stripe too."""
    faltan = settings().faltantes(frozenset(roles))
    assert {"PAGOS_STRIPE_API_BASE", "PAGOS_STRIPE_SECRET_KEY"} <= set(faltan)
    assert settings().faltantes(frozenset(roles), pasarela_propia=True) == []
    assert settings().faltantes(frozenset({"api"})) == []


@pytest.mark.parametrize("roles", [{"worker"}, {"relay"}])
def test_sin_las_cuentas_de_los_afiliados_no_arranca(roles, tmp_path):
    """Without the destinations file (or, in test mode, the template) every payout would fail as
    "no destination configured": a start-up error that names the file instead."""
    stripe = {"stripe_api_base": "https://api.stripe.com", "stripe_secret_key": SecretStr("sk_live_" + "x" * 24)}
    assert settings(**stripe).faltantes(frozenset(roles)) == ["PAGOS_STRIPE_DESTINATIONS_FILE"]
    archivo = tmp_path / "destinos.json"
    archivo.write_text("{}")
    assert settings(**stripe, stripe_destinations_file=archivo).faltantes(frozenset(roles)) == []
    prueba = {**stripe, "stripe_secret_key": SecretStr("sk_test_" + "x" * 24)}
    assert settings(**prueba, stripe_destination_template="acct_{id_afiliado}").faltantes(frozenset(roles)) == []


def test_un_token_http_corto_no_arranca():
    with pytest.raises(ValidationError, match="PAGOS_HTTP_TOKENS: every token must be at least 16") as info:
        settings(http_host=TODAS, http_tokens=SecretStr(f"{'a' * 32},corto123"))
    assert "corto123" not in str(info.value)  # pydantic's own text would quote the input: not here


def test_token_de_pulsar_o_archivo_pero_no_ambos(tmp_path):
    with pytest.raises(ValidationError, match="not both"):
        settings(pulsar_token=SecretStr("jwt"), pulsar_token_file=tmp_path / "t")


def test_la_seguridad_de_pulsar_llega_al_cliente(tmp_path):
    assert PulsarSecurity().client_options() == {"tls_validate_hostname": True}
    archivo = tmp_path / "token"
    archivo.write_text("jwt-1\n")
    opciones = PulsarSecurity(token_file=archivo, tls_trust_certs_file=tmp_path / "ca.pem").client_options()
    assert opciones["tls_trust_certs_file_path"] == str(tmp_path / "ca.pem")
    assert opciones["tls_validate_hostname"] is True
    assert opciones["authentication"] is not None
    assert PulsarSecurity(token=SecretStr("jwt")).authentication() is not None


def test_un_intento_de_pago_debe_caber_en_el_lease():
    with pytest.raises(ValidationError, match="PAGOS_LEASE_SECONDS must exceed"):
        settings(lease_seconds=20, stripe_timeout_seconds=10, settle_margin_seconds=10)
    assert settings(lease_seconds=22, stripe_timeout_seconds=10).lease_seconds == 22


def test_una_clave_de_idempotencia_que_vive_menos_que_la_atencion_mas_el_margen_no_arranca():
    """A key renewed before its payment is flagged, or before a call under it could be listed, would
    make a new key (and a second payout) the ordinary path."""
    with pytest.raises(ValidationError, match=r"PAGOS_IDEMPOTENCY_KEY_MAX_AGE_SECONDS.*PAGOS_ATTENTION_AFTER_SECONDS"):
        settings(idempotency_key_max_age_seconds=600)
    with pytest.raises(ValidationError, match="PAGOS_SETTLE_MARGIN_SECONDS"):
        settings(idempotency_key_max_age_seconds=3700, attention_after_seconds=3600, settle_margin_seconds=300)
    assert settings(idempotency_key_max_age_seconds=3900, attention_after_seconds=3600).settle_margin_seconds == 300


def test_una_llamada_bajo_una_clave_nunca_cruza_las_24_h_de_stripe():
    with pytest.raises(ValidationError, match="24 h"):
        settings(idempotency_key_max_age_seconds=23.99 * 3600, lease_seconds=600)


def test_el_margen_de_asentamiento_se_llama_como_antes_tambien(monkeypatch):
    """`PAGOS_RESOLVE_FAILED_AFTER_SECONDS` (its name until the worker used the margin too) still works."""
    monkeypatch.setenv("PAGOS_RESOLVE_FAILED_AFTER_SECONDS", "120")
    assert Settings(_env_file=None, **BASE).settle_margin_seconds == 120
    monkeypatch.setenv("PAGOS_SETTLE_MARGIN_SECONDS", "90")
    with pytest.raises(ValidationError, match=r"PAGOS_SETTLE_MARGIN_SECONDS.*PAGOS_RESOLVE_FAILED_AFTER_SECONDS"):
        Settings(_env_file=None, **BASE)


def test_el_margen_de_asentamiento_no_es_menor_que_un_intento():
    """A call we gave up on at our timeout may still run at Stripe: a shorter margin proves nothing."""
    with pytest.raises(ValidationError, match="PAGOS_SETTLE_MARGIN_SECONDS"):
        settings(settle_margin_seconds=5, stripe_timeout_seconds=10)


@pytest.mark.parametrize(
    ("consulta", "error"),
    [
        ("sslmode=verify-full&sslrootcert=/etc/ca.crt", None),
        ("ssl=require", None),
        ("sslmode=on", "sslmode must be one of"),
        ("ssl=require&sslmode=require", "not both"),
    ],
)
def test_tls_de_la_base_en_la_url(consulta, error):
    url = f"postgresql+asyncpg://u:p@db.example:5432/pagos?{consulta}"
    if error is None:
        Settings(database_url=url)
        return
    with pytest.raises(ValidationError, match=error):
        Settings(database_url=url)


def test_la_url_de_la_base_para_asyncpg_lleva_el_tls_con_los_nombres_de_libpq():
    """asyncpg reads libpq's names from a DSN; `ssl=` would be sent to the server as a setting."""
    dsn = asyncpg_dsn("postgresql+asyncpg://u:p%40ss@db:5432/pagos?ssl=verify-full&sslrootcert=/etc/ca.crt")
    assert dsn == "postgresql://u:p%40ss@db:5432/pagos?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt"
    assert asyncpg_dsn("postgresql+asyncpg://u@db/pagos?sslmode=require") == "postgresql://u@db/pagos?sslmode=require"
