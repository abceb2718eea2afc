"""The Stripe settings are checked once, at start: a bad base or key stops the service with a
message that names the setting and never shows the key."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from pagos_worker.adapters.stripe.config import StripeConfig, StripeConfigError

CLAVE = "sk_live_51AbCdEfGh"


def validar(api_base: str = "https://api.stripe.com", clave: str = CLAVE) -> StripeConfig:
    return StripeConfig(api_base=api_base, secret_key=SecretStr(clave)).validated()


@pytest.mark.parametrize(
    ("base", "normalizada"),
    [
        ("https://api.stripe.com", "https://api.stripe.com"),
        ("https://api.stripe.com/", "https://api.stripe.com"),
        ("  https://stripe-egress.internal:8443/stripe/ ", "https://stripe-egress.internal:8443/stripe"),
        ("http://127.0.0.1:12111", "http://127.0.0.1:12111"),
        ("http://127.8.9.10:1", "http://127.8.9.10:1"),
        ("http://[::1]:12111", "http://[::1]:12111"),
    ],
)
def test_bases_admitidas(base, normalizada):
    assert validar(base).api_base == normalizada


@pytest.mark.parametrize(
    "base",
    [
        "http://api.stripe.com",
        "http://localhost:12111",  # a name may resolve anywhere
        "http://10.0.0.5:12111",
        "ftp://api.stripe.com",
        "api.stripe.com",
        "https://user:pass@api.stripe.com",
        "https://api.stripe.com?x=1",
        "https://",
    ],
)
def test_bases_rechazadas(base):
    with pytest.raises(StripeConfigError, match="PAGOS_STRIPE_API_BASE"):
        validar(base)


@pytest.mark.parametrize("prefijo", ["sk_live_", "sk_test_", "rk_live_", "rk_test_"])
def test_claves_admitidas_sin_espacios_alrededor(prefijo):
    assert validar(clave=f"  {prefijo}abc123\n").secret_key.get_secret_value() == f"{prefijo}abc123"


@pytest.mark.parametrize(
    "clave",
    [
        "pk_live_abc",
        "whsec_abc",
        "sk_live_abc\r\nX-Injected: 1",
        "sk_live_añ",
        "sk_live_a b",
        "",
        "   ",
        "sk_live_\x00",
    ],
)
def test_claves_rechazadas_sin_mostrarlas(clave):
    with pytest.raises(StripeConfigError, match="PAGOS_STRIPE_SECRET_KEY") as info:
        validar(clave=clave)
    if clave.strip():
        assert clave.strip() not in str(info.value)


def test_la_clave_no_aparece_en_la_representacion():
    config = validar()
    assert CLAVE not in repr(config)
    assert CLAVE not in str(config)


def test_un_user_agent_con_saltos_de_linea_se_rechaza():
    with pytest.raises(StripeConfigError, match="User-Agent"):
        StripeConfig(api_base="https://api.stripe.com", secret_key=SecretStr(CLAVE), user_agent="x\r\ny: z").validated()


def test_una_base_con_credenciales_no_se_repite_en_el_mensaje():
    with pytest.raises(StripeConfigError) as info:
        validar("ftp://usuario:s3cr3t0@api.stripe.com")
    assert "s3cr3t0" not in str(info.value)
