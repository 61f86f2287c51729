"""Keys kept in files: the fallback store where no OS keychain works (a 0600 file named for
what it is: keys-not-encrypted.json, NOT encrypted), and reading the files localgate kept before
the keychain. Stdlib plus localgate.paths/lock/errors; keystore.py decides when they are used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from localgate import lock, paths
from localgate.errors import KeychainError

FALLBACK_FILE = "keys-not-encrypted.json"


def fallback_file() -> Path:
    return paths.data_dir() / FALLBACK_FILE


class FileStore:
    """The fallback where no keychain works: a JSON object in a 0600 file, NOT encrypted."""

    kind = "file"

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        self.where = f"{path} (not encrypted)"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeychainError(f"{self.path} cannot be read as a key file "
                                f"({type(exc).__name__})") from None  # never echo its content
        if not isinstance(data, dict):
            raise KeychainError(f"{self.path} is not a key file (expected a JSON object)")
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def get(self, name: str) -> str | None:
        return self._read().get(name)

    def entries(self) -> dict[str, str]:
        return self._read()

    def set(self, name: str, value: str) -> None:
        with lock.exclusive(self.path):
            data = self._read()
            data[name] = value
            self._write(data)

    def delete(self, name: str) -> bool:
        with lock.exclusive(self.path):
            data = self._read()
            if data.pop(name, None) is None:
                return False
            self._write(data)
        return True

    def _write(self, data: dict[str, str]) -> None:
        if data:
            paths.write_private(self.path, json.dumps(data, indent=2).encode())
        else:
            self.path.unlink(missing_ok=True)  # no keys left: no plaintext file left either


def legacy_reader(path: Path, entry: str) -> Callable[[], dict[str, str]]:
    """Reads a file of earlier versions (local-key, clients.json) as the entry it becomes."""

    def read() -> dict[str, str]:
        text = path.read_text(errors="replace").strip()
        return {entry: text} if text else {}
    return read


def merge(have: str, new: str) -> str:
    """`new` folded into `have`: JSON lists and objects merged, what `have` holds winning."""
    try:
        a, b = json.loads(have), json.loads(new)
    except ValueError:
        return have
    if isinstance(a, list) and isinstance(b, list):
        return json.dumps(a + [x for x in b if x not in a])
    if isinstance(a, dict) and isinstance(b, dict):
        return json.dumps({**b, **a})
    return have
