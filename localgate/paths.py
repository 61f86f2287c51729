"""Where localgate keeps its files. LOCALGATE_HOME puts everything in one folder.

Nothing here runs at import time; platformdirs is imported only when a path is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "localgate"


def _home() -> Path | None:
    home = os.environ.get("LOCALGATE_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    home = _home()
    if home:
        return home
    import platformdirs
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    home = _home()
    if home:
        return home
    import platformdirs
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def cache_dir() -> Path:
    home = _home()
    if home:
        return home
    import platformdirs
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def config_file() -> Path:
    return config_dir() / "config.toml"


def ledger_file() -> Path:
    return data_dir() / "spend.db"


def catalog_cache_file() -> Path:
    return cache_dir() / "catalog-cache.json"


def state_file() -> Path:
    """Written by a running daemon: where it listens and its pid (read by `localgate status`)."""
    return data_dir() / "daemon.json"


def local_key_file() -> Path:
    return data_dir() / "local-key"
