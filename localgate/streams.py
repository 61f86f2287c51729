"""What `Gateway.complete()` returns: an Answer, whose body is whole or a Relay — the upstream
stream passed on chunk by chunk as it arrives, watched (usage, first content, errors), scrubbed
of keys, and always ended properly: by the upstream's own end, or by an error event of ours.

A Relay settles its exchange exactly once, when it ends or is closed, whatever happened
(client gone, upstream cut, shutdown, a bug). Async, but no aiohttp.web here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localgate import relay
from localgate.errors import GatewayError, UpstreamError
from localgate.upstream import chunks, read_all

if TYPE_CHECKING:
    from localgate.exchange import Prepared
    from localgate.gateway import Gateway
    from localgate.routing import Route

log = logging.getLogger("localgate")
MAX_BODY_BYTES = 32 * 2**20  # a non-streamed upstream answer larger than this is refused (502)
_DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    format: str                    # "chat", or the ingress's own format when sent natively
    body: bytes | None = None
    stream: Relay | None = None


async def read_body(resp: Any, who: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """A whole upstream body, bounded: memory stays flat whatever an upstream sends."""
    try:
        length = resp.content_length
        if length is not None and length <= limit:
            return await read_all(resp, who)  # the common case: one read of a known size
        if length is not None:
            raise UpstreamError(f"{who} sent a response of {length:,} bytes, more than "
                                f"localgate accepts ({limit:,})")
        parts, size = [], 0
        async for chunk in chunks(resp, who):
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"{who} sent a response larger than localgate accepts "
                                    f"({limit:,} bytes)")
            parts.append(chunk)
        return b"".join(parts)
    finally:
        resp.release()


class Relay:
    """An async iterator of the bytes to send; `aclose(status)` ends it and settles."""

    def __init__(self, gw: Gateway, p: Prepared, resp: Any, rt: Route, translator: Any,
                 fmt: str) -> None:
        self.gw, self.p, self.resp, self.rt, self.fmt = gw, p, resp, rt, fmt
        self.translator = translator
        if fmt == "chat":
            self.watch: Any = relay.SseWatcher(
                drop_usage_chunk=not p.wants_usage,
                on_usage=lambda usage: gw.usage_with_cost(p.ex, usage))
        elif fmt == "responses":
            self.watch = relay.ResponsesWatcher()
        elif fmt == "forward":
            self.watch = relay.AnyWatcher()
        else:  # Anthropic Messages passed on: a translated copy is watched
            from localgate.providers import Target, adapter_for
            tr = adapter_for(rt.target.api).stream_translator(Target(
                rt.target.slug, rt.target.base_url, None, rt.upstream_model, rt.model,
                rt.provider, rt.kind))
            self.watch = relay.Shadow(tr)
        self._scrub = relay.KeyScrubber(rt.api_key.encode()) if rt.api_key else None
        self._ending = b"\n\n"  # the last bytes sent: our own events must start a new event
        gw.upstream.active.add(resp)  # closed on shutdown
        self._gen = self._run()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen  # iterated directly: no wrapper coroutine per chunk

    async def aclose(self, status: str | None = None) -> None:
        """End the stream (if it has not ended) and settle the exchange; `status` says why it
        ended early (client_closed; interrupted while the daemon stops)."""
        ex = self.p.ex
        if status is not None and ex.status == "in_flight":
            ex.status = "interrupted" if self.gw.upstream.stopping else status
        try:
            await self._gen.aclose()
        finally:
            self._release()
            self.gw.finish(ex)

    def _release(self) -> None:
        ex, watch = self.p.ex, self.watch
        self.gw.upstream.active.discard(self.resp)
        if watch.usage is not None:
            ex.usage = watch.usage
        ex.content_chars = watch.text_chars
        self.resp.close()  # an early exit must drop the upstream connection, not reuse it

    def _out(self, data: bytes) -> bytes:
        if self._scrub is not None:  # an echoed key never goes out, whole or split
            data = self._scrub.feed(data)
        if data:
            self._ending = data[-4:]
        return data

    def _held(self) -> bytes:
        """What the scrubber held back (the start of something key-like that never became
        one): it goes out before our own events and at the end."""
        held = self._scrub.flush() if self._scrub is not None else b""
        if held:
            self._ending = held[-4:]
        return held

    def _own(self, event: bytes) -> bytes:
        held = self._held()
        ended = self._ending.endswith(b"\n\n") or self._ending == b"\r\n\r\n"
        out = held + (event if ended else b"\n" + event)
        self._ending = out[-4:]
        return out

    async def _run(self) -> AsyncIterator[bytes]:
        ex, watch, tr = self.p.ex, self.watch, self.translator
        who = self.rt.target.name
        try:
            async for chunk in chunks(self.resp, who):
                data = watch.feed(tr.feed(chunk) if tr is not None else chunk)
                if data:
                    yield self._out(data)
                    if watch.first_content and ex.ttft_ms is None:
                        ex.first_token()
                    watch.sent(data)
            tail = watch.feed(tr.close()) if tr is not None else b""
            tail += watch.flush()
            tail = self._out(tail) if tail else b""
            tail += self._held()
            if tail:
                yield tail
            for event in self._ending_events():
                yield event
        except UpstreamError as exc:
            err = exc
            if self.gw.upstream.stopping:
                err = UpstreamError("localgate is shutting down; the stream was ended")
                ex.status = "interrupted"
            else:
                ex.status = "error"
            ex.error = err.message
            self.gw.live.upstream_failed = True
            yield self._own(self._error_event(err))
        except GatewayError as exc:  # anything else of ours: still a proper end
            ex.status, ex.error = "error", exc.message
            yield self._own(self._error_event(exc))
        except Exception as exc:  # a bug: the client still gets a proper end, the log the trace
            log.exception("relay of %s failed", ex.id)
            ex.status, ex.error = "error", f"internal error: {type(exc).__name__}"
            yield self._own(self._error_event(GatewayError(
                "localgate hit an internal error mid-stream; see its log")))

    def _ending_events(self) -> list[bytes]:
        """What the stream still needs once the upstream has ended (raises when cut)."""
        ex, watch = self.p.ex, self.watch
        if watch.error is not None:
            message = str(watch.error.get("message", watch.error))[:300]
            ex.status = "error"
            ex.error = relay.scrub_text(message, self.rt.api_key)
            if not watch.done and self.fmt == "chat":  # the upstream's error chunk ends it
                return [self._own(_DONE)]
            return []
        if not watch.done:
            if not watch.finished:
                raise UpstreamError(f"{self.rt.target.name} ended the stream before it was "
                                    "complete")
            if self.fmt == "chat":
                return [self._own(_DONE)]
        return []

    def _error_event(self, exc: GatewayError) -> bytes:
        err = exc.envelope()["error"]
        if self.fmt != "chat":
            return relay.native_error_event(self.fmt, err, getattr(self.watch, "sequence", 0))
        gen_id, model = self.watch.ids()
        return relay.error_event(err, gen_id=gen_id, model=model)
