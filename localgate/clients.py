"""Named local API keys (`localgate token create NAME`): each key's SHA-256, never the key
itself (a key is shown once, at creation), kept as one JSON entry of the key store (the OS
keychain; see keystore.py). Blocking (keychain, files): call off the event loop.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from localgate import keystore
from localgate.keystore import KeyStore

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED = frozenset({"default", "anonymous", "kilo", "kilo-token"})


class ClientError(Exception):
    pass


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _valid(data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        return {}
    return {n: v for n, v in data.items() if isinstance(v, dict)}


def load(store: KeyStore | None = None) -> dict[str, dict[str, Any]]:
    """name -> {sha256, created, revoked} for every client ever created."""
    return _valid(keystore.read_json(store or keystore.open_store(), keystore.CLIENTS))


def create(name: str, store: KeyStore | None = None) -> str:
    """Make a new key for NAME and return it (the only time it is ever shown)."""
    if not NAME_RE.match(name) or name in RESERVED:
        raise ClientError(f"{name!r} is not a usable client name (letters, digits, . _ -; "
                          f"not {', '.join(sorted(RESERVED))})")
    key = "lg-" + secrets.token_urlsafe(32)

    def add(current: Any) -> dict[str, dict[str, Any]]:
        data = _valid(current)
        if name in data and not data[name].get("revoked"):
            raise ClientError(f"client {name!r} exists; revoke it first to issue a new key")
        data[name] = {"sha256": digest(key), "created": _now(), "revoked": None}
        return data

    keystore.update_json(store or keystore.open_store(), keystore.CLIENTS, add)
    return key


def revoke(name: str, store: KeyStore | None = None) -> None:
    def mark(current: Any) -> dict[str, dict[str, Any]]:
        data = _valid(current)
        if name not in data or data[name].get("revoked"):
            raise ClientError(f"no active client named {name!r} (see `localgate token list`)")
        data[name]["revoked"] = _now()
        return data

    keystore.update_json(store or keystore.open_store(), keystore.CLIENTS, mark)


def active_digests(store: KeyStore | None = None) -> dict[str, str]:
    """sha256 -> client name, for the daemon's auth."""
    return {v["sha256"]: n for n, v in load(store).items()
            if isinstance(v.get("sha256"), str) and not v.get("revoked")}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
