"""What every `localgate setup TOOL` writer shares: the daemon's base URL, the tool's client key,
the backup of the file a writer changes (made once, restored byte for byte by --undo), and a
mode-preserving atomic write.

Synchronous and CLI-only (never called from the event loop). Imports config, clients, paths and
remote; nothing from the request path.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localgate import paths

DEFAULT_MODEL = "localgate/default"  # the daemon's configured default model
NEW_FILE_MODE = 0o600  # a file we create holds a key


class SetupError(Exception):
    """A setup that cannot go ahead; nothing has been changed when it is raised."""


@dataclass(frozen=True)
class Ctx:
    """What a writer renders: the daemon's root URL, the key (or its placeholder), the model."""
    root: str
    key: str
    model: str = DEFAULT_MODEL

    @property
    def v1(self) -> str:
        return self.root + "/v1"


@dataclass(frozen=True)
class FileTool:
    """A tool whose settings live in one file that setup merges its entries into."""
    name: str                              # the CLI's TOOL
    client: str                            # the client key's name (the spend log's `client`)
    path: Callable[[], Path]               # where the tool reads the file (its docs say)
    render: Callable[[str, Ctx], str]      # existing text ("" if none) -> the text to write
    shows: Callable[[Ctx], list[str]]      # the entries set, one line each, for the output
    notes: Callable[[Ctx], list[str]] = lambda ctx: []
    uses_model: bool = True


@dataclass(frozen=True)
class EditorTool:
    """An editor extension whose settings live inside the editor: setup prints what to paste."""
    name: str
    client: str
    title: str
    fields: Callable[[Ctx], list[tuple[str, str]]]
    uses_model: bool = True


@dataclass
class Report:
    """What happened (or would happen, for --print), for the CLI to print."""
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


# ---- where things are ---------------------------------------------------------------------------

def home() -> Path:
    return Path.home()


def xdg_config() -> Path:
    """$XDG_CONFIG_HOME, else ~/.config: where OpenCode and the Kilo CLI look on every OS."""
    value = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return Path(value).expanduser() if value else home() / ".config"


def env_dir(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else default


def first_existing(folder: Path, names: list[str], default: str) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    return folder / default


def base_url() -> str:
    """The daemon's root URL: the running daemon's state file, else config.toml's [server]."""
    from localgate import config, remote
    from localgate.errors import ConfigError
    state = remote.daemon()
    if state:
        return remote.daemon_url(state)
    try:
        settings = config.load()
    except ConfigError as exc:
        raise SetupError(f"config error in {paths.config_file()}: {exc}") from exc
    return remote.daemon_url({"host": settings.host, "port": settings.port})


# ---- the tool's client key ----------------------------------------------------------------------

def placeholder(client: str) -> str:
    return f"<new key for {client}>"


def new_key(client: str) -> tuple[str, bool]:
    """Revoke the client's active key (its only copy is the file being rewritten) and make a
    new one: (the key, whether an old one was revoked)."""
    from localgate import clients
    try:
        revoked = revoke_key(client)
        return clients.create(client), revoked
    except clients.ClientError as exc:
        raise SetupError(str(exc)) from exc


def revoke_key(client: str) -> bool:
    from localgate import clients
    if not _active(client):
        return False
    clients.revoke(client)
    return True


def _active(client: str) -> bool:
    from localgate import clients
    entry = clients.load().get(client)
    return isinstance(entry, dict) and not entry.get("revoked")


# ---- backups ------------------------------------------------------------------------------------
# One folder per tool under the data dir: record.json says which file was changed, whether it
# existed and its mode; `original` holds its bytes. Made before the first change and never
# overwritten, so --undo after any number of re-runs restores what the user had.

def _backup_dir(tool: str) -> Path:
    return paths.data_dir() / "setup-backups" / tool


def record(tool: str) -> dict[str, Any] | None:
    try:
        data = json.loads((_backup_dir(tool) / "record.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("path"), str) else None


def backup_file(tool: str) -> Path:
    return _backup_dir(tool) / "original"


def save_backup(tool: str, target: Path, original: bytes | None, mode: int | None) -> None:
    folder = paths.private_dir(_backup_dir(tool))
    if original is not None:
        paths.write_private(folder / "original", original)
    doc = {"path": str(target), "existed": original is not None, "mode": mode,
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    paths.write_private(folder / "record.json", json.dumps(doc, indent=2).encode())


def drop_backup(tool: str) -> None:
    folder = _backup_dir(tool)
    for name in ("original", "record.json"):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


# ---- files --------------------------------------------------------------------------------------

def real_path(path: Path) -> Path:
    """Follow a symlinked config (dotfile managers) so the link itself survives the write."""
    return path.resolve() if path.is_symlink() else path


def read_text(path: Path) -> tuple[bytes | None, str, int | None]:
    """(raw bytes or None when absent, decoded text, permission bits or None)."""
    try:
        raw = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None, "", None
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return raw, raw.decode("utf-8-sig"), mode
    except UnicodeDecodeError as exc:
        raise SetupError(f"{path} is not UTF-8 text; not changed") from exc


def write_file(path: Path, data: bytes, mode: int | None) -> None:
    """Replace `path` atomically, keeping the user's permission bits (new files: 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".localgate", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, NEW_FILE_MODE if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
