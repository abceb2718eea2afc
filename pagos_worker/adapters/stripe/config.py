"""The Stripe adapter's settings, checked once at start: a bad key or base is a start-up error that
names the setting, never a failure per payment, and no message ever carries the key itself."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

# The Stripe API version every request is pinned to (the `Stripe-Version` header): the shapes the
# adapter reads (transfer objects, error objects, list objects) are those of this version.
STRIPE_VERSION = "2024-06-20"
KEY_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")  # a key: no spaces, no controls, nothing beyond ASCII
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")


class StripeConfigError(ValueError):
    """A Stripe setting that cannot work; the message names the setting, never its secret value."""


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_base: str
    secret_key: SecretStr
    timeout_s: float = 10.0  # total per attempt: connect, send, wait and read
    connect_timeout_s: float = 3.0
    read_timeout_s: float | None = None  # between bytes of the answer; None: up to the total
    max_intentos: int = 4
    backoff_base_s: float = 0.2
    backoff_max_s: float = 3.0
    concurrencia: int = 100
    rate: float = 100.0
    burst: int = 20
    breaker_umbral: int = 5
    breaker_abierto_s: float = 10.0
    user_agent: str = "pagos-worker"
    ca_bundle: Path | None = None  # extra CAs to trust (an egress proxy that inspects TLS); else the system's

    def validated(self) -> StripeConfig:
        """This configuration with the base and key normalised, or `StripeConfigError`."""
        valid_header_value(self.user_agent, "User-Agent")
        return dataclasses.replace(self, api_base=valid_api_base(self.api_base), secret_key=valid_key(self.secret_key))


def es_clave_de_prueba(secret_key: SecretStr) -> bool:
    """A test-mode key (`sk_test_`, `rk_test_`): Stripe's test mode, another account's budget."""
    return secret_key.get_secret_value().strip().startswith(("sk_test_", "rk_test_"))


def valid_api_base(api_base: str) -> str:
    """`https://…`, or plain `http://` only to a loopback address (the simulator on this machine)."""
    text = api_base.strip().rstrip("/")
    parts = urlsplit(text)
    # Credentials first: no message below may quote a URL that carries them.
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise StripeConfigError("PAGOS_STRIPE_API_BASE must not carry credentials, a query or a fragment")
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise StripeConfigError(f"PAGOS_STRIPE_API_BASE must be an https:// URL, got {text!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise StripeConfigError(
            f"PAGOS_STRIPE_API_BASE {text!r}: plain http is only for a loopback address (127.0.0.0/8, ::1); "
            "use https://"
        )
    return text


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it could resolve anywhere


def valid_key(secret_key: SecretStr) -> SecretStr:
    key = secret_key.get_secret_value().strip()
    if not key or not _PRINTABLE_ASCII.fullmatch(key):
        raise StripeConfigError("PAGOS_STRIPE_SECRET_KEY must be printable ASCII without spaces or line breaks")
    if not key.startswith(KEY_PREFIXES):
        raise StripeConfigError(
            f"PAGOS_STRIPE_SECRET_KEY must start with one of {', '.join(KEY_PREFIXES)} (a secret or restricted key)"
        )
    return SecretStr(key)


def valid_header_value(valor: str, nombre: str) -> str:
    if not _HEADER_VALUE.fullmatch(valor):
        raise StripeConfigError(f"the {nombre} header value must be printable ASCII without line breaks")
    return valor
