"""A real, working keyring backend for the tests, selected through keyring's own configuration
(PYTHON_KEYRING_BACKEND=tests.keyring_backend.FileKeyring), in the test process and in every
CLI or daemon subprocess alike. Entries live in the JSON file named by LOCALGATE_TEST_KEYRING,
which conftest puts outside LOCALGATE_HOME: never the developer's keychain. It passes keyring's
own backend contract tests (test_keychain.py), so it behaves as a keychain backend does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import KeyringLocked, PasswordDeleteError


class FileKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:
        if not os.environ.get("LOCALGATE_TEST_KEYRING"):
            raise RuntimeError("LOCALGATE_TEST_KEYRING is not set")
        return 0.5

    @property
    def path(self) -> Path:
        return Path(os.environ["LOCALGATE_TEST_KEYRING"])

    def get_password(self, service: str, username: str) -> str | None:
        value = self._read().get(self._key(service, username))
        return value if isinstance(value, str) else None

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._locked() as data:
            data[self._key(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._locked() as data:
            if data.pop(self._key(service, username), None) is None:
                raise PasswordDeleteError("no such password")

    @staticmethod
    def _key(service: str, username: str) -> str:
        return json.dumps([service, username])

    def _read(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        # the daemon and CLI subprocesses write concurrently: lock, read, change, replace
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            fd, tmp = tempfile.mkstemp(dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)


class LockedKeyring(KeyringBackend):
    """A keychain that loads but refuses every call, as a locked or absent Secret Service does."""

    priority = 0.1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    set_password = delete_password = get_password  # type: ignore[assignment]
