"""Where secrets live: provider keys, the local API key and the named clients' key hashes.

The OS keychain through `keyring` (service "localgate") when a backend works; else a 0600 file
named for what it is (keyfile.py). The only module that imports keyring or catches its errors;
imports only keyring, stdlib and localgate.paths/lock/errors/keyfile/config (types). Everything
here blocks (D-Bus, files): call it off the event loop. Never logs or prints a key.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from localgate import lock, paths
from localgate.config import Provider
from localgate.errors import KeychainError
from localgate.keyfile import FALLBACK_FILE, FileStore, fallback_file, legacy_reader, merge

__all__ = ["FALLBACK_FILE", "FileStore", "KeyStore", "KeychainError", "KeyringStore", "Keys",
           "fallback_file", "local_key", "open_store"]

log = logging.getLogger("localgate")

SERVICE = "localgate"
LOCAL_KEY = "local-api-key"     # the default local API key
CLIENTS = "clients"             # JSON: named clients' SHA-256 hashes (clients.py owns the shape)
INDEX = "provider-keys"         # JSON list of the slugs stored: keyring cannot enumerate
_PROVIDER = "provider:"         # + slug: one entry per provider key
_LEGACY = (("local-key", LOCAL_KEY), ("clients.json", CLIENTS))  # files before the keychain


class KeyStore(Protocol):
    kind: str            # "keychain" | "file"
    where: str           # for people: which keychain, or which file

    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> bool: ...


class KeyringStore:
    """Entries of service "localgate" in the keyring backend; backend failures -> KeychainError.
    A value longer than _PART characters is kept in parts ("NAME#GEN.1", "NAME#GEN.2", ...)
    behind a head entry naming them: Windows' Credential Manager holds ~1280 characters an
    entry, and the clients' entry outgrows that (keyring does not split values itself)."""

    kind = "keychain"

    def __init__(self, backend: Any) -> None:
        self._kr = backend
        self.where = f"the OS keychain ({type(backend).__module__}.{type(backend).__name__})"

    def get(self, name: str) -> str | None:
        head = self._get(name)
        names = _part_names(name, head)
        if not names:
            return head
        parts = [self._get(n) for n in names]
        if any(p is None for p in parts):  # replaced meanwhile: the caller keeps what it had
            raise KeychainError(f"{name} changed while it was read from {self.where}")
        return "".join(p for p in parts if p is not None)

    def set(self, name: str, value: str) -> None:
        old = self._get(name)
        parts = [value[i:i + _PART] for i in range(0, len(value), _PART)]
        if len(parts) > 1:
            # new parts under a new generation, then the head: a reader never mixes two values
            head = f"{_PARTS_HEAD}{len(parts)}:{secrets.token_hex(4)}"
            for part_name, part in zip(_part_names(name, head), parts, strict=True):
                self._set(part_name, part)
            value = head
        self._set(name, value)
        for part_name in _part_names(name, old):
            self._delete(part_name)

    def delete(self, name: str) -> bool:
        head = self._get(name)
        if head is None:
            return False  # backends raise PasswordDeleteError for a missing entry
        for entry in (name, *_part_names(name, head)):
            self._delete(entry)
        return True

    def _get(self, name: str) -> str | None:
        with self._mapped("read"):
            value = self._kr.get_password(SERVICE, name)
        return value if isinstance(value, str) else None

    def _set(self, name: str, value: str) -> None:
        with self._mapped("write to"):
            self._kr.set_password(SERVICE, name, value)

    def _delete(self, name: str) -> None:
        from keyring.errors import PasswordDeleteError
        with self._mapped("delete from"), contextlib.suppress(PasswordDeleteError):
            self._kr.delete_password(SERVICE, name)

    @contextlib.contextmanager
    def _mapped(self, verb: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            # keyring.errors.KeyringError, and the errors backends leak from their transport
            # (secretstorage, jeepney, pywin32...)
            raise KeychainError(f"could not {verb} {self.where}: {_why(exc)}") from exc


_PART = 1000                        # characters per keychain entry (see KeyringStore)
_PARTS_HEAD = "localgate-parts:"    # + "COUNT:GEN": no key or JSON value starts like this


def _part_names(name: str, head: str | None) -> list[str]:
    if head is None or not head.startswith(_PARTS_HEAD):
        return []
    count, _, gen = head[len(_PARTS_HEAD):].partition(":")
    if not count.isdigit() or not gen:
        return []
    return [f"{name}#{gen}.{i}" for i in range(1, int(count) + 1)]


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


# ---- opening a store ---------------------------------------------------------------------------

def open_store(*, adopt_fallback: bool = False) -> KeyStore:
    """The keychain when its backend works, else the fallback file; today's files (local-key,
    clients.json) are moved in first. `adopt_fallback` (the daemon's start) also moves a
    fallback file left from a time without a keychain into the keychain."""
    backend, reason = _backend()
    store: KeyStore
    if backend is not None:
        store = KeyringStore(backend)
        try:
            store.get(INDEX)  # a backend can load and still not work (no Secret Service)
        except KeychainError as exc:
            reason = str(exc)
    if reason is not None:
        store = FileStore(fallback_file(), reason)
    elif adopt_fallback and fallback_file().exists():
        _move_in(store, FileStore(fallback_file(), "").entries, fallback_file())
    for file_name, entry in _LEGACY:
        legacy = paths.data_dir() / file_name
        if legacy.exists():
            _move_in(store, legacy_reader(legacy, entry), legacy)
    return store


_found: concurrent.futures.Future[tuple[Any, str | None]] | None = None


def preload() -> None:
    """Start finding keyring's backend on a worker thread, so that the daemon's open_store()
    finds it ready: keyring's discovery imports much and runs `ldconfig` (~0.1 s), which then
    overlaps the rest of start-up instead of adding to it."""
    global _found
    if _found is None:
        found: concurrent.futures.Future[tuple[Any, str | None]] = concurrent.futures.Future()
        threading.Thread(target=lambda: found.set_result(_detect()), name="keyring-detect",
                         daemon=True).start()
        _found = found


def _backend() -> tuple[Any, str | None]:
    """(keyring backend, None), or (None, why there is none)."""
    return _found.result() if _found is not None else _detect()


_NO_KEYCHAIN = ("keyring.backends.null.Keyring", "keyring.backends.fail.Keyring")


def _detect() -> tuple[Any, str | None]:
    if os.environ.get("PYTHON_KEYRING_BACKEND", "").strip() in _NO_KEYCHAIN:
        # keyring's own configuration says "none": spare start-up keyring's import (~0.1 s)
        return None, "PYTHON_KEYRING_BACKEND selects no keychain"
    try:
        import keyring
        from keyring.backends import chainer, fail, null
        backend = keyring.get_keyring()
    except Exception as exc:  # PYTHON_KEYRING_BACKEND or keyringrc.cfg naming a broken backend
        return None, f"keyring could not load its backend ({_why(exc)})"
    if isinstance(backend, fail.Keyring | null.Keyring) or (
            isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        return None, "keyring found no backend on this machine"
    return backend, None


def notice(store: KeyStore) -> str | None:
    """One line for people when keys are not in a keychain; None when they are."""
    if isinstance(store, FileStore):
        return (f"no usable OS keychain ({store.reason}): keys are kept in {store.path}, "
                "a 0600 file that is NOT encrypted")
    return None


# ---- moving entries in from files --------------------------------------------------------------

def _move_in(store: KeyStore, read: Callable[[], dict[str, str]], path: Path) -> None:
    """Merge the entries `read()` returns into `store`, then remove `path`. What the store holds
    already wins; JSON lists and objects are merged (index, clients)."""
    with _keys_lock():
        try:
            for name, value in read().items():
                have = store.get(name)
                merged = value if have is None else merge(have, value)
                if merged != have:
                    store.set(name, merged)
                elif value != have and name == LOCAL_KEY:
                    # the keychain is the user's, shared by every LOCALGATE_HOME
                    log.warning("%s held another local API key than the one in %s, which "
                                "stays in use: give clients `localgate token show`'s key", path,
                                store.where)
        except (OSError, KeychainError) as exc:  # keep the file: nothing is lost, retried later
            log.warning("could not move %s into %s: %s", path, store.where, exc)
            return
        _touch_stamp()
        path.unlink(missing_ok=True)
    log.info("moved %s into %s", path.name, store.where)


# ---- entries: locked read-modify-write, and a stamp other processes can watch ------------------

@contextlib.contextmanager
def _keys_lock() -> Iterator[None]:
    paths.private_dir(paths.data_dir())
    with lock.exclusive(paths.data_dir() / "keys"):
        yield


def stamp_file() -> Path:
    """Rewritten after every change made through this module (no secret in it): a running
    daemon watches it to refresh its snapshot."""
    return paths.data_dir() / "keys.changed"


def _touch_stamp() -> None:
    paths.write_private(stamp_file(), f"{os.getpid()} {os.urandom(4).hex()}\n".encode())


def stamp() -> tuple[int, int, int] | None:
    try:
        st = stamp_file().stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_json(store: KeyStore, name: str) -> Any:
    """The JSON value of entry `name`, None when absent or not JSON."""
    raw = store.get(name)
    try:
        return None if raw is None else json.loads(raw)
    except ValueError:
        return None


def update_json(store: KeyStore, name: str, change: Callable[[Any], Any]) -> Any:
    """Replace entry `name` with `change(current value)` under the keys lock; returns the new
    value. An exception from `change` leaves the entry as it was."""
    with _keys_lock():
        new = change(read_json(store, name))
        store.set(name, json.dumps(new))
        _touch_stamp()
    return new


# ---- provider keys -----------------------------------------------------------------------------

def stored_slugs(store: KeyStore) -> list[str]:
    index = read_json(store, INDEX)
    return [s for s in index if isinstance(s, str)] if isinstance(index, list) else []


def stored_provider_keys(store: KeyStore) -> dict[str, str]:
    """slug -> key for every provider key in the store."""
    out = {}
    for slug in stored_slugs(store):
        key = store.get(_PROVIDER + slug)
        if key:
            out[slug] = key
    return out


def set_provider_key(store: KeyStore, slug: str, key: str) -> None:
    with _keys_lock():
        store.set(_PROVIDER + slug, key)
        slugs = stored_slugs(store)
        if slug not in slugs:
            store.set(INDEX, json.dumps([*slugs, slug]))
        _touch_stamp()


def remove_provider_key(store: KeyStore, slug: str) -> bool:
    """Remove a provider's stored key; False when there was none."""
    with _keys_lock():
        found = store.delete(_PROVIDER + slug)
        slugs = stored_slugs(store)
        if slug in slugs:
            store.set(INDEX, json.dumps([s for s in slugs if s != slug]))
        _touch_stamp()
    return found


def mask(key: str) -> str:
    """The last four characters only, and only of a key long enough to keep them private."""
    return f"…{key[-4:]}" if len(key) >= 12 else "…"


# ---- the local API key -------------------------------------------------------------------------

def local_key(create: bool = True, store: KeyStore | None = None) -> str | None:
    """LOCALGATE_API_KEY, else the key in the store, generated there on first use."""
    env = os.environ.get("LOCALGATE_API_KEY")
    if env:
        return env
    store = store or open_store()
    key = store.get(LOCAL_KEY)
    if key or not create:
        return key or None
    with _keys_lock():
        key = store.get(LOCAL_KEY)  # another process may have made it meanwhile
        if not key:
            key = "lg-" + secrets.token_urlsafe(32)
            store.set(LOCAL_KEY, key)
            _touch_stamp()
    return key


# ---- the daemon's snapshot ---------------------------------------------------------------------

class Keys:
    """Provider keys for the gateway (its KeySource): the environment first, then an in-memory
    snapshot of the store. provider_key() never blocks; refresh() does (call it off the loop)."""

    def __init__(self, store: KeyStore | None) -> None:
        self.store = store  # None: environment only
        self._stored: dict[str, str] = {}
        self._stamp: tuple[int, int, int] | None = None

    def provider_key(self, provider: Provider) -> str | None:
        if provider.key_env:
            env = os.environ.get(provider.key_env)
            if env:
                return env
        return self._stored.get(provider.slug)

    def source(self, provider: Provider) -> str | None:
        """Where provider_key() finds the key: "env", "keychain", "file", or None."""
        if provider.key_env and os.environ.get(provider.key_env):
            return "env"
        if self.store is None or provider.slug not in self._stored:
            return None
        return self.store.kind

    def stale(self) -> bool:
        """Has this module changed an entry (in any process) since the last refresh? Blocking."""
        return stamp() != self._stamp

    def refresh(self) -> bool:
        """Reread the store; on failure keep the snapshot, log why and return False. Blocking."""
        if self.store is None:
            return True
        seen = stamp()  # before reading: a change made meanwhile shows at the next check
        try:
            self._stored = stored_provider_keys(self.store)
        except KeychainError as exc:
            log.warning("keys not reread, the last ones stay in use: %s", exc)
            return False
        self._stamp = seen
        return True

