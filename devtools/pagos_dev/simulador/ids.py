"""Object and request ids shaped like Stripe's: a prefix and random characters."""

from __future__ import annotations

import random
import secrets

_IDS = random.Random(secrets.randbits(64))  # noqa: S311 - unique ids for a simulator, not secrets


def nuevo_id(prefijo: str) -> str:
    return f"{prefijo}_{_IDS.getrandbits(96):024x}"
