"""The production keychain path against a real Secret Service (gnome-keyring-daemon on a private
D-Bus session bus this test starts, its keyring under a temporary HOME: never the developer's),
and the proof that no key leaks: not into logs, error messages, `config show`, `keys list`,
`status`, the spend log, nor any file under LOCALGATE_HOME but the fallback file when it is
the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from localgate import keystore
from tests.conftest import auth
from tests.fakes import FakeUpstream
from tests.http import HELLO, chat
from tests.test_daemon import serve, write_config
from tests.test_keychain import check_store, files_under, lg, listed

OPENAI_KEY = "sk-secret-service-openai-7d1f0a9c"
KILO_KEY = "kilo-secret-service-key-3b8e5c21"
BYOK = {"model": "openai/gpt-5.2", "messages": HELLO}
# a session bus of our own: no activation of services from the system's folders
BUS_CONFIG = """<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/>
  </policy>
</busconfig>"""


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install dbus-daemon "
                    "gnome-keyring; .ci/run installs them)")
    assert not missing, f"CI must have {missing}: .ci/run installs them"


def _secrets_owned(address: str) -> bool:
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                      interface="org.freedesktop.DBus")
    with open_dbus_connection(bus=address) as conn:
        reply = conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s",
                                                        ("org.freedesktop.secrets",)))
    return bool(reply.body[0])


@contextlib.asynccontextmanager
async def secret_service(root: Path) -> AsyncIterator[dict[str, str]]:
    """A session bus and an unlocked gnome-keyring under `root`; yields the environment for
    localgate subprocesses (keyring left to detect its backend, as in production)."""
    _need("dbus-daemon", "gnome-keyring-daemon")
    for sub in ("home", "run", "bus"):
        (root / sub).mkdir(mode=0o700, parents=True)
    (root / "bus.conf").write_text(BUS_CONFIG.format(dir=root / "bus"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    env.update(HOME=str(root / "home"), XDG_DATA_HOME=str(root / "home" / "data"),
               XDG_CONFIG_HOME=str(root / "home" / "config"), XDG_RUNTIME_DIR=str(root / "run"))
    bus = await asyncio.create_subprocess_exec(
        "dbus-daemon", f"--config-file={root / 'bus.conf'}", "--nofork", "--print-address=1",
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, env=env)
    keyring_daemon = None
    try:
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = (await asyncio.wait_for(bus.stdout.readline(),
                                                                  10)).decode().strip()
        keyring_daemon = await asyncio.create_subprocess_exec(
            "gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=env)
        assert keyring_daemon.stdin is not None
        keyring_daemon.stdin.write(b"login-password-of-the-test")  # creates and unlocks "login"
        keyring_daemon.stdin.close()
        for _ in range(200):
            if await asyncio.to_thread(_secrets_owned, env["DBUS_SESSION_BUS_ADDRESS"]):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("gnome-keyring-daemon never took org.freedesktop.secrets")
        yield env
    finally:
        for proc in (keyring_daemon, bus):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_store_read_remove_through_a_real_secret_service(
        home: Path, fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path_factory.mktemp("secret-service")
    async with secret_service(root) as env:
        # the store's contract, on the backend production uses here (off the loop: D-Bus)
        from keyring.backends import SecretService
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", env["DBUS_SESSION_BUS_ADDRESS"])
        await asyncio.to_thread(check_store, keystore.KeyringStore(SecretService.Keyring()))

        env.pop("LOCALGATE_API_KEY")  # the local key is generated and kept there too
        code, out, err = await lg("keys", "set", "openai", stdin=OPENAI_KEY, env=env)
        assert code == 0, err
        assert "the OS keychain (keyring.backends.SecretService.Keyring)" in out, out
        rows = await listed(env)
        assert rows["openai"]["source"] == "keychain" and rows["openai"]["key"] == "…0a9c"
        code, local_key, err = await lg("token", "show", env=env)
        assert code == 0, err
        local_key = local_key.strip()
        write_config(home, fake.url)
        async with serve(home, env) as d:
            r = await chat(d.url, BYOK, headers=auth(local_key))
            assert r.status == 200, r.raw
            assert fake.last.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
            assert (await lg("keys", "remove", "openai", env=env))[0] == 0
            (await chat(d.url, BYOK, headers=auth(local_key))).error(401)
            assert "NOT encrypted" not in d.stderr()
        assert await listed(env) == {}
        assert (await lg("token", "show", env=env))[1].strip() == local_key
        for secret in (OPENAI_KEY, local_key):
            assert not any(secret.encode() in b for b in files_under(home).values())
            # and the keychain itself keeps them encrypted at rest
            assert not any(secret.encode() in b for b in files_under(root / "home").values())


# ---- no key leaks anywhere -----------------------------------------------------------------

@contextlib.asynccontextmanager
async def store_env(mode: str, root: Path) -> AsyncIterator[dict[str, str]]:
    if mode == "secret-service":
        async with secret_service(root) as env:
            yield env
        return
    env = os.environ.copy()
    if mode == "file":
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    yield env


class EchoingUpstream(FakeUpstream):
    """Refusals quote the key the request carried, as some providers' 401 messages do."""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        sent = request.headers.get("Authorization", "")[len("Bearer "):]
        self.knobs.error_body = {"error": {"message": f"Incorrect API key provided: {sent}",
                                           "type": "invalid_request_error"}}
        return await super().chat(request)


@pytest.fixture
async def echoing(aiohttp_server: Any) -> FakeUpstream:
    f = EchoingUpstream()
    f.url = str((await aiohttp_server(f.app)).make_url("")).rstrip("/")
    return f


async def _requests(url: str, local_key: str, fake: FakeUpstream) -> list[bytes]:
    """What clients see for successes, BYOK refusals (the upstream echoing the key back), a
    stream, a wrong local key and a pass-through call."""
    seen = []
    r = await chat(url, BYOK, headers=auth(local_key))
    assert r.status == 200, r.raw
    assert fake.last.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    seen.append(r.raw)
    r = await chat(url, {**BYOK, "stream": True}, headers=auth(local_key))
    seen.append(r.raw)
    for status in (401, 429, 500):  # 429 and 500 fall back to the gateway, which fails too
        fake.knobs.status = status
        for body in (BYOK, {**BYOK, "stream": True}):
            r = await chat(url, body, headers=auth(local_key))
            assert r.status >= 400
            seen.append(r.raw + json.dumps(dict(r.headers)).encode())
    fake.reset()
    seen.append((await chat(url, BYOK, headers=auth("lg-wrong-key"))).raw)
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/profile",
                                                         headers=auth(local_key)) as resp:
        seen.append(await resp.read())
    return seen


CLI_VIEWS = [("keys", "list"), ("keys", "list", "--format", "json"),
             ("keys", "list", "--format", "csv"), ("config", "show"),
             ("config", "show", "--format", "json"), ("status",), ("status", "--format", "json"),
             ("token", "list", "--format", "json"), ("log", "--format", "json"),
             ("spend", "--format", "json")]


@pytest.mark.parametrize("mode", ["keychain", "file", "secret-service"])
async def test_no_key_appears_anywhere(mode: str, home: Path, echoing: FakeUpstream,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    fake = echoing
    async with store_env(mode, tmp_path_factory.mktemp("store")) as env:
        env.pop("LOCALGATE_API_KEY")
        for slug, key in (("openai", OPENAI_KEY), ("kilo", KILO_KEY)):
            code, _, err = await lg("keys", "set", slug, stdin=key, env=env)
            assert code == 0, err
        local_key = (await lg("token", "show", env=env))[1].strip()
        secrets = [OPENAI_KEY, KILO_KEY, local_key]
        write_config(home, fake.url)
        outputs: list[Any] = []
        async with serve(home, env, args=("--log-level", "debug")) as d:
            outputs += await _requests(d.url, local_key, fake)
            views = await asyncio.gather(*(lg(*v, env=env) for v in CLI_VIEWS))
            outputs += [out + err for _, out, err in views]
            outputs.append(d.stderr())
            outputs += [b for n, b in files_under(home).items() if n.startswith("spend.db")]
        # the paths were taken: a masked tail was listed, an echoed key was scrubbed
        assert any("…0a9c" in o for o in outputs if isinstance(o, str))
        assert any(b"provided: <your key>" in o for o in outputs if isinstance(o, bytes))
        fallback = "keys-not-encrypted.json"
        assert (fallback in files_under(home)) == (mode == "file")
        outputs += [b for n, b in files_under(home).items() if n != fallback or mode != "file"]
        for secret in secrets:
            leaks = [o[:300] for o in outputs
                     if (secret.encode() if isinstance(o, bytes) else secret) in o]
            assert not leaks, f"{mode}: a key leaked: {leaks}"
