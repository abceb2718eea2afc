"""Object and request ids shaped like Stripe's: a prefix and random characters."""

from __future__ import annotations

import random
import secrets
import time

_IDS = random.Random(secrets.randbits(64))  # noqa: S311 - unique ids for a simulator, not secrets


def nuevo_id(prefijo: str) -> str:
    return f"{prefijo}_{_IDS.getrandbits(96):024x}"


def nuevo_id_ordenado(prefijo: str) -> str:
    """Ids that sort by creation time (as Stripe's roughly do): the ledger's index on them grows at
    its end instead of dirtying a random page a transfer."""
    return f"{prefijo}_{time.time_ns() // 1000:013x}{_IDS.getrandbits(44):011x}"
