"""The only module that talks HTTP outwards: opens upstream calls on one shared ClientSession,
applies the `[upstream]` timeouts, and turns aiohttp/asyncio failures into errors.Upstream*.

Knows no provider formats. Messages name the provider, never a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp
from yarl import URL

from localgate.errors import UpstreamError, UpstreamTimeout


class Upstream:
    """Sends prepared calls. `open()` returns once response headers arrived (or raises)."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, first_byte_s: float,
                 read_gap_s: float) -> None:
        self.session = session
        self.first_byte_s = first_byte_s
        # total=None: a generation may stream for many minutes; the gaps are what we bound.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s,
                                              connect=connect_s, sock_read=read_gap_s)

    async def open(self, method: str, url: str | URL, *, headers: Mapping[str, str],
                   data: bytes | None, who: str) -> aiohttp.ClientResponse:
        """Send the call; raise UpstreamTimeout (no headers in time) or UpstreamError."""
        try:
            async with asyncio.timeout(self.first_byte_s):
                return await self.session.request(method, url, headers=headers, data=data,
                                                  timeout=self._timeout, allow_redirects=False)
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError) and "connect" in str(exc).lower():
                raise UpstreamError(f"{who} did not accept a connection in time") from exc
            raise UpstreamTimeout(f"{who} sent no response headers within "
                                  f"{self.first_byte_s:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(f"{who} is unreachable ({_reason(exc)})") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{who} failed before answering ({_reason(exc)})") from exc


async def chunks(resp: aiohttp.ClientResponse, who: str) -> AsyncIterator[bytes]:
    """The response body as it arrives; mid-stream failures become Upstream* errors."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{who} went silent mid-stream (read gap timeout)") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"{who} cut the stream ({_reason(exc)})") from exc


async def read_all(resp: aiohttp.ClientResponse, who: str) -> bytes:
    try:
        return await resp.read()
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{who} went silent before finishing its response") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"{who} cut its response short ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}"
    text = str(exc).split("\n")[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def get_json(session: aiohttp.ClientSession, url: str, *, headers: Mapping[str, str],
                   timeout_s: float) -> object:
    """A small GET for background work (catalog refresh); UpstreamError on any failure."""
    try:
        async with session.get(url, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                raise UpstreamError(f"{url} answered {resp.status}")
            return await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise UpstreamError(f"{url} failed: {type(exc).__name__}") from exc
