"""Where localgate keeps its files. LOCALGATE_HOME puts everything in one folder.

Nothing here runs at import time; platformdirs is imported only when a path is asked for.
"""

from __future__ import annotations

import contextlib
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


def daemon_lock_file() -> Path:
    """Held by the running daemon for its whole life: one daemon per home."""
    return data_dir() / "daemon.lock"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) for the user only (0700 where the OS has modes)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o700)
        except OSError:
            pass  # not ours to change (a shared folder named by LOCALGATE_HOME): files stay 0600
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, readable by the user only (0600). The temporary
    file has a unique name, so concurrent writers never trip over each other's."""
    import tempfile
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
