"""The use case, framework-free: one request along the straight line
accept -> prepare (validate, resolve, controls, route) -> complete (adapter, upstream with the
BYOK fallback, relay) -> settle.

Every ingress (OpenAI chat, FIM, Anthropic Messages, OpenAI Responses, embeddings, forwarded
Kilo calls) goes through `prepare_*` and `complete()`; ingress codecs sit around it in server/.
Delivery (server/) writes the Answer; this module never imports aiohttp.web, keyring or sqlite3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from localgate import accounting, relay, routing, validation
from localgate.catalog import Catalog, provider_of
from localgate.config import Provider, Settings
from localgate.controls import Controls
from localgate.errors import (ByokRefused, GatewayError, PaidModelAuthRequired,
                              Paused, SpendLogUnavailable, UpstreamError)
from localgate.exchange import MAX_MODEL_CHARS, Exchange, Ingress, Prepared, clean
from localgate.headers import PASSED_ON, forward_headers, route_headers, scrub
from localgate.ledger import SpendEntry, utc_text
from localgate.listing import Listing
from localgate.providers import HttpCall, Target, adapter_for
from localgate.repair import repair_tool_calls
from localgate.streams import MAX_BODY_BYTES, Answer, Relay, read_body
from localgate.upstream import Upstream, read_all

log = logging.getLogger("localgate")

_BYOK_REFUSALS = {401: "refused (invalid or revoked key)", 402: "refused (insufficient funds)",
                  403: "refused (no permission for this model)", 429: "rate-limited"}
_REFUSED_STATUSES = frozenset({401, 402, 403, 404, 413, 429, 503})


class KeySource(Protocol):
    def provider_key(self, provider: Provider) -> str | None: ...


class SpendLog(Protocol):
    def write(self, entry: SpendEntry) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def accepting(self) -> bool: ...


@dataclass
class Live:
    """The settings and catalog in force; replaced whole on reload, read once per request."""

    settings: Settings
    catalog: Catalog
    paused: bool = False           # proxied requests get 503 `paused` (tray, CLI, dashboard)
    upstream_failed: bool = False  # the last upstream call failed (the tray's badge)

    def check_paused(self) -> None:
        """Paused (503 `paused`); called for every proxied request."""
        if self.paused:
            raise Paused("localgate is paused: proxied requests are refused until you resume "
                         "(`localgate resume`, or Resume in the tray or dashboard)")


class Gateway:
    def __init__(self, live: Live, keys: KeySource, upstream: Upstream, *,
                 controls: Controls | None = None, spend_log: SpendLog | None = None,
                 on_finish: Callable[[Exchange], None] | None = None) -> None:
        self.live = live
        self.keys = keys
        self.upstream = upstream
        self.controls = controls or Controls(lambda: self.live.settings)
        self.spend_log = spend_log
        self.on_finish = on_finish
        self.listing = Listing(live, keys.provider_key)

    def health(self) -> dict[str, Any]:
        """What /health adds: the spend log's state (rows not yet written, why)."""
        return {"spend_log": self.spend_log.health()} if self.spend_log is not None else {}

    # ---- the record ------------------------------------------------------------------------
    def accept(self, *, headers: Mapping[str, str], client: str, request_id: str,
               kind: str = "chat") -> Exchange:
        """The record of a request, from the moment it is accepted."""
        ex = Exchange(request_id, utc_text(), client, clean(headers.get("User-Agent", "")), "",
                      kind=kind)
        mode = headers.get("x-kilocode-mode")
        ex.mode = clean(mode, 64).strip().lower() or None if mode else None
        return ex

    def note_model(self, ex: Exchange, body: Any) -> None:
        model = body.get("model") if isinstance(body, dict) else None
        ex.model = clean(model, MAX_MODEL_CHARS) if isinstance(model, str) else ""

    def check_log(self) -> None:
        """Spend is never blind: once the rows waiting for the disk reach their bound, new
        requests are refused until the spend log is writable again (README)."""
        if self.spend_log is not None and not self.spend_log.accepting():
            raise SpendLogUnavailable("localgate cannot write its spend log (is the disk "
                                      "full?); requests are refused until it can: see "
                                      "`localgate status`")

    def begin(self, ex: Exchange) -> None:
        """Write the in-flight row: from here on even a killed daemon leaves a record."""
        if self.spend_log is not None:
            self.spend_log.write(accounting.entry(ex, 0, None, accounting.Tokens()))

    def refuse(self, ex: Exchange, err: GatewayError) -> None:
        """A request refused before anything was sent: one complete row."""
        ex.status = "refused" if err.status in _REFUSED_STATUSES else "error"
        ex.http_status, ex.error = err.status, err.message
        self.finish(ex)

    def finish(self, ex: Exchange) -> None:
        """Settle the reservation to the real cost and complete the row, once. Never raises: a
        bug in costing still leaves a complete row (cost 0, the error named)."""
        if ex.finished:
            return
        ex.finished = True
        if ex.status == "in_flight":
            ex.status = "ok" if ex.http_status < 400 else "error"
        ex.latency_ms = int((time.monotonic() - ex.started) * 1000)
        try:
            micros, source, tokens = accounting.cost_of(ex, self.live.catalog)
        except Exception:  # never lose the row over a costing bug
            log.exception("could not cost request %s", ex.id)
            micros, source, tokens = 0, "estimated", accounting.Tokens()
            ex.error = ex.error or "localgate could not cost this request (see its log)"
        if ex.reservation is not None:
            self.controls.settle(ex.reservation, micros)
        elif micros:
            self.controls.record(ex.client, micros)
        if self.spend_log is not None:
            self.spend_log.write(accounting.entry(ex, micros, source, tokens))
        if self.on_finish is not None:
            self.on_finish(ex)

    # ---- prepare: validate, resolve, controls, route (no I/O) -----------------------------
    def prepare(self, ex: Exchange, body: Any, *, headers: Mapping[str, str],
                gateway_path: bool = False, kilo_token: str | None = None) -> Prepared:
        """An OpenAI chat request (SPEC 4: virtual models, then controls, then the route)."""
        model, ex.stream = validation.chat(body)
        if self.live.paused:
            self.live.check_paused()
        rt = self._admit(ex, model, body, kilo_token=kilo_token)
        msgs, ex.repairs = repair_tool_calls(body["messages"])
        if msgs is not body["messages"]:
            body = {**body, "messages": msgs}
        return Prepared(ex, rt, body, headers, ex.stream,
                        validation.wants_usage(body, gateway_path=gateway_path))

    def prepare_fim(self, ex: Exchange, body: Any, *, headers: Mapping[str, str]) -> Prepared:
        """A fill-in-the-middle request along the same line (SPEC 4, FIM). Local auth is
        required: the hosted FIM endpoint has no anonymous tier."""
        settings, cat = self.live.settings, self.live.catalog
        model, ex.stream = validation.fim(body)
        self.live.check_paused()
        if ex.client == "anonymous":
            raise PaidModelAuthRequired("fill-in-the-middle needs your local API key "
                                        "(`localgate token show`)")
        rt = routing.route_fim(model, settings, cat, self.keys.provider_key)
        ex.resolved_model, ex.provider = rt.model, rt.provider
        self.controls.allow(client=ex.client, model=rt.model, provider=rt.provider,
                            raw_prefix=model.partition("/")[0])
        ex.prompt, ex.rt, ex.route = body, rt, rt.kind
        self._reserve(ex, body)
        return Prepared(ex, rt, body, headers, ex.stream, True)

    def prepare_ingress(self, ex: Exchange, body: Any, ingress: Ingress, *,
                        headers: Mapping[str, str], model: str | None = None,
                        kilo_token: str | None = None) -> Prepared:
        """A Responses, Messages or embeddings request: controlled and routed like chat; sent
        natively where the route speaks the client's format, else translated to chat."""
        body = validation.body_object(body)
        ex.stream = validation.stream(body)
        model = model if model is not None else validation.model(body)
        self.live.check_paused()
        rt = self._admit(ex, model, body, kilo_token=kilo_token, ingress=ingress)
        return Prepared(ex, rt, body, headers, ex.stream, True, ingress)

    def prepare_forward(self, ex: Exchange, body: Any, ingress: Ingress, *,
                        headers: Mapping[str, str], path: str,
                        kilo_token: str | None = None) -> Prepared:
        """An inference call that localgate forwards to the Kilo service as it is (legacy
        completions, edits, ...): allow lists and limits apply (an unknown model is priced
        conservatively), it is logged and costed from whatever usage the service reports."""
        body = validation.body_object(body)
        ex.stream = bool(body.get("stream") is True)
        model = validation.model(body) or ""
        self.live.check_paused()
        entry = self.live.catalog.get(model) if model else None
        ex.resolved_model, ex.provider = model, provider_of(model) if model else "kilo"
        free = model.endswith(":free") or bool(entry and entry.get("free"))
        if ex.client == "anonymous":
            raise PaidModelAuthRequired("calls forwarded to the Kilo service need your local "
                                        "API key (`localgate token show`)")
        if model:
            self.controls.allow(client=ex.client, model=model, provider=ex.provider,
                                raw_prefix=model.partition("/")[0])
        kilo = self.live.settings.kilo
        key = kilo_token or self.keys.provider_key(kilo)
        ex.prompt, ex.size = body, lambda: relay.body_chars(body)
        ex.rt = routing.Route(model, ex.provider, routing.GATEWAY, kilo, model, key, entry, free)
        ex.route, ex.upstream = routing.GATEWAY, kilo.slug
        if not free:
            self._reserve(ex, body, ingress)
        return Prepared(ex, ex.rt, body, headers, ex.stream, True, ingress, path=path)

    def _admit(self, ex: Exchange, model: str | None, body: dict[str, Any], *,
               kilo_token: str | None, ingress: Ingress | None = None) -> routing.Route:
        settings, cat = self.live.settings, self.live.catalog
        resolved = routing.resolve_virtual(model, ex.mode, settings)
        found = canonical, entry = routing.lookup(resolved, cat, settings)
        ex.resolved_model = canonical
        ex.provider = entry["provider"] if entry else provider_of(canonical)
        free = routing.is_free(resolved, settings, cat, found=found)
        if ex.client == "anonymous" and not free:
            raise PaidModelAuthRequired(
                f"{canonical} is a paid model: present your local API key "
                "(`localgate token show`); without one only free and local models are served")
        self.controls.allow(client=ex.client, model=canonical, provider=ex.provider,
                            raw_prefix=resolved.partition("/")[0])
        ex.prompt = body
        if ingress is not None:
            ex.size = lambda: relay.body_chars(body)
        rt = routing.route(resolved, settings, cat, self.keys.provider_key, found=found,
                           kilo_token=kilo_token, native=ingress.name if ingress else None)
        ex.rt, ex.route, ex.upstream = rt, rt.kind, rt.target.slug
        if not rt.free:
            self._reserve(ex, body, ingress)
        return rt

    def _reserve(self, ex: Exchange, body: Mapping[str, Any],
                 ingress: Ingress | None = None) -> None:
        """Hold the request's worst case against the limits (priced only if a limit is set)."""
        ex.reservation = self.controls.reserve(
            ex.client, lambda: accounting.worst_case_of(ex, body, ingress, self.live.catalog))

    # ---- complete: send (with the BYOK fallback) and relay ---------------------------------
    async def complete(self, p: Prepared) -> Answer:
        """Send the prepared request and return what to answer. Errors before the first byte
        raise GatewayError (the row is settled); a streamed Answer settles when it is closed, a
        whole one when the caller calls finish() (once it is sent: the client is not kept
        waiting for the bookkeeping)."""
        ex = p.ex
        try:
            resp, rt, native, fell_back, target = await self._open(p)
        except GatewayError as err:
            self.live.upstream_failed = True
            ex.status = "interrupted" if self.upstream.stopping else "error"
            ex.error, ex.http_status = err.message, err.status
            self.finish(ex)
            raise
        status = ex.http_status = resp.status
        self.live.upstream_failed = status >= 500
        fmt = p.ingress.name if native and p.ingress is not None else "chat"
        up_headers = resp.headers
        ctype = up_headers.get("Content-Type", "application/json")
        headers = route_headers(ex)
        headers["Content-Type"] = ctype
        # the client should not retry what localgate already retried, nor what the upstream
        # said not to (the openai SDKs honour this header)
        if fell_back or up_headers.get("x-should-retry") == "false":
            headers["x-should-retry"] = "false"
        adapter = adapter_for(rt.target.api)
        if status < 400 and ctype.startswith("text/event-stream"):
            translator = None if native else adapter.stream_translator(target)
            return Answer(200, headers, fmt, stream=Relay(self, p, resp, rt, translator, fmt))
        if status >= 400:  # an upstream's back-off and rate-limit headers
            headers.update((h, up_headers[h]) for h in PASSED_ON if h in up_headers)
        try:
            size = resp.content_length
            if size is not None and size <= MAX_BODY_BYTES:
                try:  # the usual case: a known size, read in one go
                    data = await read_all(resp, rt.target.name)
                finally:
                    resp.release()
            else:
                data = await read_body(resp, rt.target.name)
        except GatewayError as err:
            ex.status, ex.error, ex.http_status = "error", err.message, err.status
            self.finish(ex)
            raise
        try:
            return self._body_answer(p, rt, resp.status, data, headers, fmt,
                                     None if native else (adapter, target))
        except BaseException:
            self.finish(ex)
            raise

    def _body_answer(self, p: Prepared, rt: routing.Route, status: int, data: bytes,
                     headers: dict[str, str], fmt: str, translate: Any) -> Answer:
        """A whole answer: translated back to chat unless sent natively (`translate` is the
        (adapter, target) pair, or None), scrubbed, its usage costed."""
        ex, native = p.ex, translate is None
        data = scrub(rt, data)
        if status >= 400:
            if translate is not None:
                data = translate[0].error_response(status, data, translate[1])
            refusal = self.byok_refusal(rt, status, data)
            if refusal is not None:
                refusal.headers.update(headers)
                raise refusal
            ex.status, ex.error = "error", relay.error_text(data)
            return Answer(status, headers, fmt, body=data)
        if translate is not None:
            try:
                data = translate[0].chat_response(data, translate[1])
            except ValueError:
                data = b""  # not what the upstream should have sent: a 502 below
        if not relay.looks_like_object(data):
            ex.status, ex.http_status = "error", 502
            ex.error = f"{rt.target.name} sent a response that is not a JSON object"
            raise UpstreamError(ex.error, headers=headers)
        found = relay.usage_span(data)
        if found is not None:  # splice our cost fields in; the rest stays byte for byte
            usage, a, b = found
            ex.usage = relay.normalise_usage(usage)
            new = None if native else self.usage_with_cost(ex, ex.usage)
            if new is not None:
                data = data[:a] + relay.dumps(new) + data[b:]
        else:
            ex.content_chars = relay.text_chars(data)
        ex.first_token()
        return Answer(status, headers, fmt, body=data)

    async def _open(self, p: Prepared) -> tuple[Any, routing.Route, bool, bool, Target]:
        """Send upstream; a BYOK call that fails before its first byte goes once via the
        gateway (SPEC 4 step 4). Returns (response with headers read, the route that answered,
        whether it was sent natively, whether it fell back, the adapter's target)."""
        rt = p.route
        try:
            resp, native, target = await self._send(p, rt)
        except UpstreamError as exc:
            fb = self._fallback(rt)
            if fb is None:
                raise
            log.warning("%s failed (%s); retrying via the gateway", rt.target.name, exc.message)
        else:
            if not rt.may_fall_back or not (resp.status == 429 or resp.status >= 500):
                return resp, rt, native, False, target
            fb = self._fallback(rt)
            if fb is None:
                return resp, rt, native, False, target
            log.warning("%s answered %s; retrying via the gateway", rt.target.name, resp.status)
            resp.release()
        p.ex.route, p.ex.upstream, p.ex.rt = fb.kind, fb.target.slug, fb
        resp, native, target = await self._send(p, fb)
        return resp, fb, native, True, target

    def _fallback(self, rt: routing.Route) -> routing.Route | None:
        return routing.fallback(rt, self.live.settings, self.keys.provider_key)

    async def _send(self, p: Prepared, rt: routing.Route) -> tuple[Any, bool, Target]:
        t = self._target(rt)
        call, native = self._call(p, rt, t)
        resp = await self.upstream.open(call.method, call.url, headers=call.headers,
                                        data=call.body, who=rt.target.name)
        return resp, native, t

    def _call(self, p: Prepared, rt: routing.Route, t: Target) -> tuple[HttpCall, bool]:
        adapter = adapter_for(rt.target.api)
        kind = p.ex.kind
        if kind == "forward":
            return _forward_call(p, rt), True
        if kind == "fim":
            return adapter.fim_call(p.body, t, stream=p.stream,  # type: ignore[attr-defined]
                                    client_headers=p.headers), False
        if p.ingress is not None and adapter.native(p.ingress.name, t):  # type: ignore[attr-defined]
            return adapter.native_call(p.ingress.name, p.body, t,  # type: ignore[attr-defined]
                                       stream=p.stream, client_headers=p.headers), True
        return adapter.chat_call(p.chat_body(), t, stream=p.stream,
                                 client_headers=p.headers), False

    def count_tokens_call(self, body: Mapping[str, Any], native: str, key: str,
                          headers: Mapping[str, str]) -> HttpCall:
        """Anthropic's own count_tokens for an Anthropic model (free; not logged)."""
        prov = self.live.settings.providers["anthropic"]
        t = Target(prov.slug, prov.base_url, key, native, f"anthropic/{native}", "anthropic",
                   routing.BYOK)
        return adapter_for(prov.api).native_call(  # type: ignore[attr-defined]
            "count_tokens", body, t, stream=False, client_headers=headers)

    @staticmethod
    def _target(rt: routing.Route) -> Target:
        prov = rt.target
        return Target(prov.slug, prov.base_url, rt.api_key, rt.upstream_model, rt.model,
                      rt.provider, rt.kind, (rt.entry or {}).get("max_completion_tokens"),
                      prov.api_url)

    def byok_refusal(self, rt: routing.Route, status: int, body: bytes) -> GatewayError | None:
        """The plain-words error for a provider refusing the user's own key, else None."""
        if rt.kind != routing.BYOK or status not in _BYOK_REFUSALS:
            return None
        detail = relay.error_text(body)
        return ByokRefused(
            f"[BYOK] {rt.target.name} {_BYOK_REFUSALS[status]} your own {rt.target.name} key "
            f"(HTTP {status})" + (f": {detail}" if detail else ""), status=status)

    # ---- money -----------------------------------------------------------------------------
    def usage_with_cost(self, ex: Exchange, usage: dict[str, Any]) -> dict[str, Any] | None:
        """`usage` plus cost fields for routes localgate costs itself (None: leave it be)."""
        ex.usage = usage
        if ex.route not in accounting.SELF_COSTED or "cost" in usage:
            return None
        return accounting.usage_with_cost(ex.route, usage,
                                          accounting.cost_of(ex, self.live.catalog)[0])


def _forward_call(p: Prepared, rt: routing.Route) -> HttpCall:
    from yarl import URL
    # encoded=True: yarl would otherwise re-normalise the client's escapes (%2F -> /)
    url: Any = URL(f"{rt.target.api_url}{p.path}", encoded=True)
    return HttpCall("POST", url, forward_headers(p.headers, rt.api_key),
                    relay.dumps(p.body))
