"""Shared fixtures: an isolated LOCALGATE_HOME, a real fake upstream on 127.0.0.1, and the
daemon started in-process exactly as `localgate serve` starts it (runtime.start)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
from blockbuster import blockbuster_ctx
import pytest
import tomli_w

from localgate import config, runtime
from tests.fakes import FakeUpstream

LOCAL_KEY = "lg-test-local-key-0123456789"
PROVIDER_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY",
                "MISTRAL_API_KEY", "OPENROUTER_API_KEY", "KILO_API_KEY", "MOONSHOT_API_KEY",
                "MINIMAX_API_KEY", "ZAI_API_KEY", "DEEPSEEK_API_KEY", "GROQ_API_KEY",
                "LM_API_TOKEN")
DIRECT = ("openai", "x-ai", "mistral", "moonshotai", "minimax", "z-ai", "deepseek", "groq",
          "google", "openrouter", "anthropic", "ollama", "lmstudio")


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[None]:
    """A blocking call (file, socket, sleep, SQLite...) made by localgate's code inside a
    coroutine fails the test: the event loop must never wait on I/O."""
    with blockbuster_ctx("localgate"):
        yield


ROOT = Path(__file__).resolve().parent.parent
TEST_KEYRING = "tests.keyring_backend.FileKeyring"


def use_keyring(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """Select a keyring backend through keyring's own configuration, for this process (whose
    keyring caches its backend) and for every subprocess the test starts."""
    import keyring.core
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)
    keyring.core.init_backend()


def keychain_entries() -> dict[str, str]:
    """What the test keychain holds for service "localgate": entry name -> secret."""
    path = Path(os.environ["LOCALGATE_TEST_KEYRING"])
    data = json.loads(path.read_text()) if path.exists() else {}
    return {json.loads(k)[1]: v for k, v in data.items() if json.loads(k)[0] == "localgate"}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOCALGATE_HOME", str(tmp_path))
    monkeypatch.setenv("LOCALGATE_API_KEY", LOCAL_KEY)
    # keyring's own configuration: a working backend whose file lies outside LOCALGATE_HOME
    # (tests look for keys in every file there) and never the developer's keychain
    monkeypatch.setenv("LOCALGATE_TEST_KEYRING", f"{tmp_path}-keyring/keyring.json")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))  # subprocesses import it
    use_keyring(monkeypatch, TEST_KEYRING)
    for var in PROVIDER_ENV + ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                               "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # tests talk to loopback only
    # no test opens a tray or a browser on the developer's own desktop: the tray tests bring
    # their own virtual display (tests/test_tray_x11.py)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND", "BROWSER"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def provider_doc(url: str) -> dict[str, Any]:
    """Every provider pointed at its own prefix of the fake upstream; no network refresh."""
    providers: dict[str, Any] = {p: {"base_url": f"{url}/{p}/v1"} for p in DIRECT}
    providers["kilo"] = {"base_url": f"{url}/api/gateway", "api_url": url}
    return {"providers": providers, "catalog": {"refresh": False}}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeUpstream:
    f = FakeUpstream()
    server = await aiohttp_server(f.app)
    f.url = str(server.make_url("")).rstrip("/")
    return f


class Daemon:
    def __init__(self, running: runtime.Running, home: Path) -> None:
        self.running = running
        self.home = home
        self.url = f"http://127.0.0.1:{running.port}"
        self.live = running.built.live

    def sdk(self, key: str | None = LOCAL_KEY, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key or "anonymous",
                                  max_retries=0, **kw)


StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def start_daemon(fake: FakeUpstream, home: Path,
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StartDaemon]:
    started: list[Daemon] = []

    async def start(extra: dict[str, Any] | None = None, **env: str) -> Daemon:
        while started:  # one daemon per home: a test's second daemon replaces its first
            await started.pop().running.stop()
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        doc = merge(provider_doc(fake.url), extra or {})
        (home / "config.toml").write_bytes(tomli_w.dumps(doc).encode())
        settings = await asyncio.to_thread(config.load)
        d = Daemon(await runtime.start(settings, "127.0.0.1", 0), home)
        started.append(d)
        return d

    yield start
    while started:
        await started.pop().running.stop()


@pytest.fixture
async def daemon(start_daemon: StartDaemon) -> Daemon:
    return await start_daemon()


def auth(key: str = LOCAL_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
