"""The only module that talks HTTP outwards: opens upstream calls on one shared ClientSession,
applies the `[upstream]` timeouts, and turns aiohttp/asyncio failures into errors.Upstream*
whose messages a user understands ("the connection to OpenAI was cut mid-stream"), never a
library's exception names.

Knows no provider formats. Messages name the provider, never a key. On shutdown `stop()` ends
every stream and every call still waiting for headers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from localgate.errors import UpstreamError, UpstreamTimeout

SHUTTING_DOWN = "localgate is shutting down; the request was not completed"


class Upstream:
    """Sends prepared calls. `open()` returns once response headers arrived (or raises)."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, first_byte_s: float,
                 read_gap_s: float) -> None:
        self.session = session
        self.first_byte_s = first_byte_s
        # total=None: a generation may stream for many minutes; the gaps are what we bound.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s,
                                              connect=connect_s, sock_read=read_gap_s)
        self.active: set[Any] = set()      # responses being relayed (closed on stop)
        self.stopping = False

    async def open(self, method: str, url: str | URL, *, headers: Mapping[str, str],
                   data: bytes | None, who: str) -> aiohttp.ClientResponse:
        """Send the call; raise UpstreamTimeout (no headers in time) or UpstreamError."""
        if self.stopping:
            raise UpstreamError(SHUTTING_DOWN, status=503)
        try:
            async with asyncio.timeout(self.first_byte_s):
                return await self.session.request(method, url, headers=headers, data=data,
                                                  timeout=self._timeout, allow_redirects=False)
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError) and "connect" in str(exc).lower():
                raise UpstreamError(f"{who} did not accept a connection in time") from exc
            raise UpstreamTimeout(f"{who} sent no response headers within "
                                  f"{self.first_byte_s:g} s") from exc
        except aiohttp.ClientError as exc:
            if self.stopping:  # stop() closed its connection: answer, don't vanish
                raise UpstreamError(SHUTTING_DOWN, status=503) from exc
            raise UpstreamError(f"{who} {_before(exc)}") from exc

    async def stop(self) -> None:
        """Shutdown: streams end (their relays send an error event), calls still waiting for
        headers fail at once and answer 503 (closing the connector closes their connections)."""
        self.stopping = True
        for resp in list(self.active):
            resp.close()
        connector = self.session.connector
        if connector is not None:
            await connector.close()


async def chunks(resp: aiohttp.ClientResponse, who: str) -> AsyncIterator[bytes]:
    """The response body as it arrives; mid-stream failures become Upstream* errors."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{who} went silent mid-stream (no data within the read gap "
                              "timeout)") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"the connection to {who} was cut mid-stream") from exc


async def read_all(resp: aiohttp.ClientResponse, who: str) -> bytes:
    try:
        return await resp.read()
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{who} went silent before finishing its response") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"the connection to {who} was cut before its response was "
                            "complete") from exc


def _before(exc: BaseException) -> str:
    """Why a call failed before any response, in words."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError) or \
            isinstance(getattr(exc, "os_error", None), ssl.SSLError):
        return "failed the TLS handshake (certificate or TLS error)"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"is unreachable (cannot resolve {exc.host})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"is unreachable (cannot connect to {exc.host}:{exc.port})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed the connection before answering"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "sent a response localgate could not read"
    return "failed before answering (connection error)"


async def get_json(session: aiohttp.ClientSession, url: str, *, headers: Mapping[str, str],
                   timeout_s: float) -> object:
    """A small GET for background work (catalog refresh); UpstreamError on any failure."""
    return await _small_json(session, "GET", url, headers, None, timeout_s)


async def post_json(session: aiohttp.ClientSession, url: str, body: object, *,
                    headers: Mapping[str, str], timeout_s: float) -> object:
    """A small JSON POST for background work (a local server's model facts); UpstreamError on
    any failure."""
    return await _small_json(session, "POST", url, headers, body, timeout_s)


async def _small_json(session: aiohttp.ClientSession, method: str, url: str,
                      headers: Mapping[str, str], body: object, timeout_s: float) -> object:
    try:
        async with session.request(method, url, headers=headers, json=body,
                                   timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                raise UpstreamError(f"{url} answered {resp.status}")
            return await resp.json(content_type=None)
    except TimeoutError as exc:
        raise UpstreamError(f"{url} did not answer in time") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"{url} {_before(exc)}") from exc
    except ValueError as exc:
        raise UpstreamError(f"{url} sent something that is not JSON") from exc


@contextlib.asynccontextmanager
async def short_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session for a command's few small calls (the daemon's own session lives in server/)."""
    async with aiohttp.ClientSession() as session:
        yield session

