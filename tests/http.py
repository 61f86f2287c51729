"""Plain-aiohttp client helpers shared by the HTTP tests: one request, its whole reply."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import aiohttp.web

from tests.conftest import Daemon, auth

HELLO = [{"role": "user", "content": "hi"}]
# small upstream timeouts, so that timeout tests take a fraction of a second
FAST = {"upstream": {"first_byte_timeout_s": 0.5, "read_gap_timeout_s": 0.5,
                     "connect_timeout_s": 1}}


class Reply:
    def __init__(self, status: int, headers: Any, raw: bytes, elapsed: float = 0.0) -> None:
        self.status, self.headers, self.raw, self.elapsed = status, headers, raw, elapsed

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    def error(self, status: int, code: str | None = None,
              param: str | None = None) -> dict[str, Any]:
        """Assert the status and the OpenAI error envelope; return the error object."""
        assert self.status == status, (self.status, self.raw)
        env = self.json
        assert set(env) == {"error"}, env
        err = env["error"]
        assert {"message", "type", "code", "param"} <= set(err), err
        assert isinstance(err["message"], str) and err["message"]
        if code is not None:
            assert err["code"] == code, err
        if param is not None:
            assert err["param"] == param, err
        return err


async def call(target: Daemon | str, method: str, path: str, *, body: Any = None,
               data: Any = None, headers: dict[str, str] | None = None,
               session: aiohttp.ClientSession | None = None) -> Reply:
    url = target if isinstance(target, str) else target.url

    async def go(s: aiohttp.ClientSession) -> Reply:
        kw: dict[str, Any] = {"headers": headers or {}}
        if body is not None:
            kw["json"] = body
        elif data is not None:
            kw["data"] = data
        t0 = time.monotonic()
        async with s.request(method, url + path, **kw) as resp:
            return Reply(resp.status, resp.headers, await resp.read(), time.monotonic() - t0)

    if session is not None:
        return await go(session)
    async with aiohttp.ClientSession() as s:
        return await go(s)


async def chat(target: Daemon | str, body: Any, headers: dict[str, str] | None = None,
               prefix: str = "/v1") -> Reply:
    """POST chat/completions with the local key (or exactly `headers` when given)."""
    return await call(target, "POST", f"{prefix}/chat/completions", body=body,
                      headers=auth() if headers is None else headers)


async def openai_at(aiohttp_server: Any, app: aiohttp.web.Application) -> dict[str, Any]:
    """Serve `app` on 127.0.0.1 and return the config that points provider openai at it."""
    server = await aiohttp_server(app)
    return {"providers": {"openai": {"base_url": str(server.make_url("/v1")).rstrip("/")}}}
