"""Keys in the OS keychain (SPEC 1-2): `localgate keys set|list|remove`, the local key and the
named clients' hashes kept there (moved in from today's files), the daemon's snapshot refreshed
off the loop, and the not-encrypted fallback file where no keychain works.

The keychain here is keyring's own configuration selecting tests.keyring_backend (a working
backend, file outside LOCALGATE_HOME); test_secret_service.py runs a real Secret Service.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import select
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from keyring.testing.backend import BackendBasicTests

from localgate import clients, keystore
from tests.conftest import StartDaemon, auth, keychain_entries, use_keyring
from tests.fakes import FakeUpstream
from tests.http import HELLO, chat
from tests.keyring_backend import FileKeyring
from tests.test_daemon import daemon_env, serve, write_config

OPENAI_KEY = "sk-keychain-openai-0123456789"
GEMINI_KEY = "AIza-keychain-gemini-987654321"
BYOK = {"model": "openai/gpt-5.2", "messages": HELLO}
FAIL = "keyring.backends.fail.Keyring"
NULL = "keyring.backends.null.Keyring"
LOCKED = "tests.keyring_backend.LockedKeyring"


async def lg(*args: str, stdin: str = "", env: dict[str, str] | None = None,
             timeout: float = 15.0) -> tuple[int, str, str]:
    """`python -m localgate ARGS` with `stdin` piped in (asyncio's: the fake runs in this loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "localgate", *args, env=env or os.environ.copy(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def listed(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    code, out, err = await lg("keys", "list", "--format", "json", env=env)
    assert code == 0, err
    return {row["provider"]: row for row in json.loads(out)}


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- the test backend is a keyring backend like any other (keyring's own contract tests) -------

class TestFileKeyringContract(BackendBasicTests):
    def init_keyring(self) -> FileKeyring:
        return FileKeyring()


def check_store(store: Any, names: Callable[[], list[str]] | None = None) -> None:
    """What every KeyStore does; `names` lists the entries behind it, where they can be seen."""
    assert store.get("x") is None and store.delete("x") is False
    store.set("x", "one")
    store.set("y", "two ü")
    store.set("x", "three")
    assert (store.get("x"), store.get("y")) == ("three", "two ü")
    assert store.delete("x") is True and store.get("x") is None and store.get("y") == "two ü"
    # long values (the clients' entry grows) survive whole, and leave no parts behind
    for size in (3500, 2001, 1000, 1001, 0, 4000):
        value = "".join(chr(0x41 + i % 26) for i in range(size)) + "é" * (size % 3)
        store.set("long", value)
        assert store.get("long") == value
        if names is not None and store.kind == "keychain":
            parts = [n for n in names() if n.startswith("long#")]
            assert len(parts) == (0 if len(value) <= 1000 else -(-len(value) // 1000)), parts
    assert store.delete("long") is True and store.get("long") is None
    assert store.delete("y") is True
    if names is not None:
        assert not [n for n in names() if n in ("x", "y") or n.startswith("long")]


@pytest.mark.parametrize("kind", ["keychain", "file"])
def test_store_contract(kind: str, home: Path) -> None:
    path = home / keystore.FALLBACK_FILE
    if kind == "keychain":
        check_store(keystore.KeyringStore(FileKeyring()), lambda: list(keychain_entries()))
        return
    store = keystore.FileStore(path, "test")
    check_store(store, lambda: list(json.loads(path.read_text())) if path.exists() else [])
    store.set("z", "kept")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.delete("z")
    assert not path.exists()  # no keys left, no file left


# ---- keys set / list / remove ------------------------------------------------------------------

async def test_set_list_remove_through_the_keychain(home: Path) -> None:
    code, out, err = await lg("keys", "set", "openai", stdin=OPENAI_KEY + "\n")
    assert code == 0, err
    assert "OS keychain" in out and "…6789" in out and OPENAI_KEY not in out + err
    code, out, err = await lg("keys", "set", "gemini", stdin=GEMINI_KEY)  # an alias of google
    assert code == 0, err
    assert keychain_entries()["provider:google"] == GEMINI_KEY
    assert keychain_entries()["provider:openai"] == OPENAI_KEY

    rows = await listed()
    assert set(rows) == {"openai", "google"}
    assert rows["openai"] == {"provider": "openai", "source": "keychain", "key": "…6789",
                              "env_var": "OPENAI_API_KEY", "note": ""}
    assert rows["google"]["key"] == "…4321" and rows["google"]["source"] == "keychain"
    code, table, err = await lg("keys", "list")
    assert code == 0 and "OS keychain" in table and "not encrypted" not in table
    code, csv_out, _ = await lg("keys", "list", "--format", "csv")
    assert csv_out.splitlines()[0] == "provider,source,key,env_var,note"
    for text in (table, csv_out, json.dumps(rows)):
        assert OPENAI_KEY not in text and GEMINI_KEY not in text

    code, out, err = await lg("keys", "remove", "google")
    assert code == 0, err
    assert set(await listed()) == {"openai"} and "provider:google" not in keychain_entries()
    code, _, err = await lg("keys", "remove", "google")
    assert code == 1 and "no stored key for google" in err
    assert not any(OPENAI_KEY.encode() in b for b in files_under(home).values())


async def test_environment_wins_and_is_shown_as_env(home: Path) -> None:
    assert (await lg("keys", "set", "openai", stdin=OPENAI_KEY))[0] == 0
    env = daemon_env(OPENAI_API_KEY="sk-from-the-environment-4242")
    rows = await listed(env)
    assert rows["openai"]["source"] == "env" and rows["openai"]["key"] == "…4242"
    assert "OPENAI_API_KEY wins" in rows["openai"]["note"]
    rows = await listed(daemon_env(XAI_API_KEY="xai-env-only-key-1111"))
    assert rows["x-ai"]["source"] == "env" and rows["openai"]["source"] == "keychain"


@pytest.mark.parametrize("args, stdin, says", [
    (["keys", "set", "nope"], "sk-whatever-123456789", "unknown provider 'nope'"),
    (["keys", "remove", "nope"], "", "unknown provider 'nope'"),
    (["keys", "set", "openai"], "", "no key given"),
    (["keys", "set", "openai"], "sk-two words-123456789", "one line, no spaces"),
    (["keys", "set", "openai", "sk-on-the-command-line-31337"], "", "never taken as an argument"),
])
async def test_refusals_exit_2_without_echoing_the_key(args: list[str], stdin: str,
                                                        says: str) -> None:
    code, out, err = await lg(*args, stdin=stdin)
    assert code == 2, (out, err)
    assert says in err and "Traceback" not in err
    assert "31337" not in out + err and "123456789" not in out + err
    assert "provider:openai" not in keychain_entries()


async def test_configured_provider_and_aliases(home: Path) -> None:
    write_config(home, "http://127.0.0.1:9", {"providers": {"mylab": {
        "base_url": "http://127.0.0.1:9/v1", "key_env": "MYLAB_KEY"}}})
    for name, slug in (("mylab", "mylab"), ("mistralai", "mistral"), ("xai", "x-ai"),
                       ("OpenAI", "openai")):
        code, out, err = await lg("keys", "set", name, stdin=f"key-for-{slug}-000000")
        assert code == 0, err
        assert out.startswith(f"{slug} key (…0000) stored in ")
    assert set(await listed()) == {"mylab", "mistral", "x-ai", "openai"}


def test_hidden_prompt_on_a_terminal(home: Path) -> None:
    # a real pseudo-terminal, typed on after the prompt shows: getpass turns echo off, so the
    # key never appears on the screen. A new session: no way to the developer's own terminal.
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "localgate", "keys", "set", "openai"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    screen = b""
    try:
        screen += read_until(master, b"(input hidden): ")
        os.write(master, OPENAI_KEY.encode() + b"\r")
        screen += read_until(master, b"stored in ")
        assert proc.wait(timeout=20) == 0, screen
    finally:
        proc.kill()
        os.close(master)
    assert b"openai API key (input hidden): " in screen
    assert OPENAI_KEY.encode() not in screen and "…6789".encode() in screen
    assert keychain_entries()["provider:openai"] == OPENAI_KEY


def read_until(fd: int, marker: bytes, timeout: float = 20.0) -> bytes:
    got, deadline = b"", time.monotonic() + timeout
    while marker not in got:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} on the terminal: {got!r}"
        got += os.read(fd, 4096)
    return got


def test_many_clients_fit(home: Path) -> None:
    # more clients than one Windows credential (~1280 characters) could hold in one entry
    names = [f"tool-{i:02d}" for i in range(30)]
    keys = [clients.create(name) for name in names]
    assert any(n.startswith("clients#") for n in keychain_entries())
    assert set(clients.active_digests().values()) == set(names)
    r = subprocess.run([sys.executable, "-m", "localgate", "token", "list", "--format", "json"],
                       capture_output=True, text=True, timeout=20)
    assert [row["name"] for row in json.loads(r.stdout)] == ["default", *names]
    assert not any(k in r.stdout for k in keys)


async def test_parallel_sets_keep_every_key(home: Path) -> None:
    slugs = ["openai", "x-ai", "groq", "deepseek", "z-ai"]
    results = await asyncio.gather(*(lg("keys", "set", s, stdin=f"key-{s}-0123456789")
                                     for s in slugs))
    assert all(code == 0 for code, _, _ in results), results
    assert set(await listed()) == set(slugs)


# ---- the daemon uses what the CLI stores ----------------------------------------------------

async def test_running_daemon_uses_keys_from_its_next_request(home: Path,
                                                              fake: FakeUpstream) -> None:
    # a real `serve`: `keys set` / `keys remove` tell it, so the very next request sees it
    write_config(home, fake.url)
    async with serve(home) as d:
        (await chat(d.url, BYOK)).error(401)
        assert (await lg("keys", "set", "openai", stdin=OPENAI_KEY))[1].endswith(
            "(the running daemon uses it from the next request)\n")
        r = await chat(d.url, BYOK)
        assert r.status == 200 and r.headers["x-localgate-route"] == "byok"
        assert fake.last.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
        async with aiohttp.ClientSession() as http, http.get(f"{d.url}/v1/providers") as resp:
            has = {p["slug"]: p["hasKey"] for p in (await resp.json())["data"]}
        assert has["openai"] is True and has["anthropic"] is False
        assert (await lg("keys", "remove", "openai"))[0] == 0
        (await chat(d.url, BYOK)).error(401)
        assert OPENAI_KEY not in d.stderr()


async def test_in_process_daemon_refreshes_off_the_loop(start_daemon: StartDaemon,
                                                        fake: FakeUpstream) -> None:
    # no state file here, so nobody tells the daemon: its poll notices keys.changed; and
    # /localgate/reload rereads at once. blockbuster fails this test if either reads the
    # keychain on the event loop.
    d = await start_daemon()
    (await chat(d.url, BYOK)).error(401)
    assert (await lg("keys", "set", "openai", stdin=OPENAI_KEY))[0] == 0
    deadline = time.monotonic() + 5
    while (r := await chat(d.url, BYOK)).status != 200:
        assert time.monotonic() < deadline, r.raw
        await asyncio.sleep(0.1)
    assert fake.last.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    await asyncio.to_thread(lambda: keystore.remove_provider_key(keystore.open_store(), "openai"))
    async with aiohttp.ClientSession() as http, \
            http.post(f"{d.url}/localgate/reload", headers=auth()) as resp:
        assert resp.status == 200
    (await chat(d.url, BYOK)).error(401)


async def test_named_client_keys_live_in_the_keychain(start_daemon: StartDaemon) -> None:
    d = await start_daemon()
    code, key, err = await lg("token", "create", "vscode")
    assert code == 0, err
    key = key.strip()
    assert key not in json.dumps(keychain_entries())
    assert '"vscode"' in keychain_entries()["clients"]
    code, out, _ = await lg("token", "list", "--format", "json")
    sources = {row["name"]: row["source"] for row in json.loads(out)}
    assert sources == {"default": "env", "vscode": "keychain"}
    deadline = time.monotonic() + 5  # the poll picks the new client up
    while (await chat(d.url, {"model": "ollama/x", "messages": HELLO},
                      headers=auth(key))).status == 401:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


# ---- today's files move into the keychain ------------------------------------------------------

async def test_files_from_before_the_keychain_are_moved_in(home: Path,
                                                           fake: FakeUpstream) -> None:
    legacy_local = "lg-legacy-local-key-from-a-file-0001"
    named_key = "lg-legacy-named-client-key-0002"
    (home / "local-key").write_text(legacy_local + "\n")
    (home / "clients.json").write_text(json.dumps({"ci": {
        "sha256": hashlib.sha256(named_key.encode()).hexdigest(),
        "created": "2026-01-01T00:00:00Z", "revoked": None}}))
    write_config(home, fake.url)
    env = daemon_env("LOCALGATE_API_KEY", OPENAI_API_KEY=OPENAI_KEY)
    async with serve(home, env) as d:
        assert not (home / "local-key").exists() and not (home / "clients.json").exists()
        assert keychain_entries()["local-api-key"] == legacy_local
        assert (await chat(d.url, BYOK, headers=auth(legacy_local))).status == 200
        assert (await chat(d.url, BYOK, headers=auth(named_key))).status == 200
        code, out, _ = await lg("token", "show", env=env)
        assert out.strip() == legacy_local
    assert not any(legacy_local.encode() in b for b in files_under(home).values())


async def test_a_different_local_key_already_in_the_keychain_wins(home: Path) -> None:
    # the keychain is the user's: another home may have stored its local key there first
    await asyncio.to_thread(FileKeyring().set_password, "localgate", "local-api-key",
                            "lg-from-another-home-000000001")
    (home / "local-key").write_text("lg-from-this-home-file-00000002\n")
    code, out, err = await lg("token", "show", env=daemon_env("LOCALGATE_API_KEY"))
    assert code == 0 and out.strip() == "lg-from-another-home-000000001"
    assert "another local API key" in err and "lg-from" not in err
    assert not (home / "local-key").exists()


# ---- no keychain: a file that says what it is ---------------------------------------------------

@pytest.mark.parametrize("backend", [FAIL, NULL, LOCKED])
async def test_no_keychain_falls_back_to_a_file_named_not_encrypted(
        backend: str, home: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    use_keyring(monkeypatch, backend)
    code, out, err = await lg("keys", "set", "openai", stdin=OPENAI_KEY)
    assert code == 0, err
    assert "not encrypted" in out and "NOT encrypted" in err
    path = home / "keys-not-encrypted.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["provider:openai"] == OPENAI_KEY
    code, table, _ = await lg("keys", "list")
    assert table.startswith("no usable OS keychain (") and "NOT encrypted" in table
    assert "file" in table and "not encrypted" in table.splitlines()[-1]
    rows = await listed()
    assert rows["openai"]["source"] == "file"
    write_config(home, fake.url)
    async with serve(home) as d:
        assert (await chat(d.url, BYOK)).status == 200
        assert fake.last.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
        said = [line for line in d.stderr().splitlines() if "keychain" in line]
        assert len(said) == 1 and "NOT encrypted" in said[0], d.stderr()


@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere detection finds the real keychain")
async def test_a_box_without_secret_service_falls_back(home: Path, tmp_path: Path) -> None:
    # keyring left to detect its backend, as in production, on a session with no D-Bus
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    env.update(HOME=str(tmp_path / "h"), XDG_CONFIG_HOME=str(tmp_path / "h" / "config"),
               XDG_DATA_HOME=str(tmp_path / "h" / "data"))
    code, out, err = await lg("keys", "set", "openai", stdin=OPENAI_KEY, env=env)
    assert code == 0, err
    assert "no usable OS keychain (keyring found no backend on this machine)" in err
    assert json.loads((home / "keys-not-encrypted.json").read_text())["provider:openai"]


async def test_keys_stored_without_a_keychain_move_in_when_one_works(
        home: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    env = daemon_env(PYTHON_KEYRING_BACKEND=FAIL)
    assert (await lg("keys", "set", "openai", stdin=OPENAI_KEY, env=env))[0] == 0
    assert (home / "keys-not-encrypted.json").exists()
    code, _, err = await lg("keys", "list")  # the keychain works here: the CLI says what's left
    assert "keys-not-encrypted.json (not encrypted) holds keys" in err
    write_config(home, fake.url)
    async with serve(home) as d:
        assert not (home / "keys-not-encrypted.json").exists()
        assert keychain_entries()["provider:openai"] == OPENAI_KEY
        assert (await chat(d.url, BYOK)).status == 200
        assert "moved keys-not-encrypted.json into the OS keychain" in d.stderr()
        assert "NOT encrypted" not in d.stderr() and OPENAI_KEY not in d.stderr()

