"""Where keys come from. For now: provider keys from the environment, and the local API key
from LOCALGATE_API_KEY or a 0600 file in the data dir (the OS keychain replaces the file later;
this module is the seam). Never logs or prints a key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from localgate import paths
from localgate.config import Provider


class EnvKeys:
    """Provider keys from the environment (`key_env` of each provider)."""

    def provider_key(self, provider: Provider) -> str | None:
        if not provider.key_env:
            return None
        return os.environ.get(provider.key_env) or None


def local_key(create: bool = True, path: Path | None = None) -> str | None:
    """LOCALGATE_API_KEY, else the key kept on disk, generated on first use (0600). Blocking."""
    env = os.environ.get("LOCALGATE_API_KEY")
    if env:
        return env
    path = path or paths.local_key_file()
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    if not create:
        return None
    key = "lg-" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
