"""Named local API keys (`localgate token create NAME`). Until the keychain work lands, the
seam is a 0600 file in the data dir that holds each key's SHA-256, never the key itself: a key
is shown once, at creation. Blocking file I/O: call off the event loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from localgate import paths

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED = frozenset({"default", "anonymous", "kilo", "kilo-token"})


class ClientError(Exception):
    pass


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _file() -> Path:
    return paths.data_dir() / "clients.json"


def load(path: Path | None = None) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((path or _file()).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, dict[str, Any]], path: Path | None = None) -> None:
    path = path or _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def create(name: str) -> str:
    """Make a new key for NAME and return it (the only time it is ever shown)."""
    if not NAME_RE.match(name) or name in RESERVED:
        raise ClientError(f"{name!r} is not a usable client name (letters, digits, . _ -; "
                          f"not {', '.join(sorted(RESERVED))})")
    data = load()
    if name in data and not data[name].get("revoked"):
        raise ClientError(f"client {name!r} exists; revoke it first to issue a new key")
    key = "lg-" + secrets.token_urlsafe(32)
    data[name] = {"sha256": digest(key), "created": _now(), "revoked": None}
    _save(data)
    return key


def revoke(name: str) -> None:
    data = load()
    if name not in data or data[name].get("revoked"):
        raise ClientError(f"no active client named {name!r} (see `localgate token list`)")
    data[name]["revoked"] = _now()
    _save(data)


def active_digests(path: Path | None = None) -> dict[str, str]:
    """sha256 -> client name, for the daemon's auth."""
    return {v["sha256"]: n for n, v in load(path).items()
            if isinstance(v, dict) and v.get("sha256") and not v.get("revoked")}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
