"""The use case, framework-free: one chat request along the straight line
resolve -> controls -> route -> adapter -> upstream (with BYOK fallback) -> settle.

Delivery (server/) drives it and writes the bytes; this module never imports aiohttp.web,
keyring or sqlite3. Keys come from a KeySource; the exchange record goes to `on_finish`.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from localgate import accounting, catalog as catalog_mod, routing
from localgate.catalog import Catalog, provider_of
from localgate.config import Provider, Settings
from localgate.controls import DEFAULT_MAX_OUTPUT, Controls, Reservation
from localgate.errors import (AuthRequired, ByokRefused, GatewayError, InvalidRequest,
                              PaidModelAuthRequired, Paused, UpstreamError)
from localgate.ledger import SpendEntry, utc_text
from localgate.pricing import estimate_tokens, prompt_chars, worst_case
from localgate.providers import GATEWAY_FIM_FIELDS, HttpCall, build_chat, build_fim, mistral_body
from localgate.repair import repair_tool_calls, rewrite_tool_call_ids
from localgate.upstream import Upstream

log = logging.getLogger("localgate")

_KILO_HEADER_PREFIX = "x-kilocode-"
_BYOK_REFUSALS = {401: "refused (invalid or revoked key)", 402: "refused (insufficient funds)",
                  403: "refused (no permission for this model)", 429: "rate-limited"}


class KeySource(Protocol):
    def provider_key(self, provider: Provider) -> str | None: ...


class SpendLog(Protocol):
    def write(self, entry: SpendEntry) -> None: ...


@dataclass
class Live:
    """The settings and catalog in force; replaced whole on reload, read once per request."""

    settings: Settings
    catalog: Catalog
    paused: bool = False   # proxied requests get 503 `paused` (tray, CLI, dashboard)
    upstream_failed: bool = False  # the last upstream call failed (the tray's badge)

    def check_paused(self) -> None:
        if self.paused:
            raise Paused("localgate is paused: proxied requests are refused until you resume "
                         "(`localgate resume`, or Resume in the tray or dashboard)")


@dataclass(slots=True)
class Exchange:
    """One request's record, filled in as it goes (the spend log's fields)."""

    id: str
    ts: str
    client: str
    user_agent: str
    model: str
    started: float = field(default_factory=time.monotonic)
    resolved_model: str = ""
    provider: str = ""
    route: str = ""
    mode: str | None = None
    stream: bool = False
    status: str = "in_flight"
    http_status: int = 0
    usage: dict[str, Any] | None = None
    ttft_ms: int | None = None
    latency_ms: int | None = None
    repairs: int = 0
    error: str | None = None
    rt: routing.Route | None = None          # the route that is (or was) serving it
    reservation: Reservation | None = None   # worst-case cost held against the limits
    prompt: Any = None                       # the request, sized only if an estimate is needed
    _prompt_chars: int | None = None
    content_chars: int = 0
    cost: tuple[Any, tuple[int, str | None, Any]] | None = None  # (usage it was computed for, cost)

    def prompt_chars(self) -> int:
        """Characters of prompt text (for estimates); worked out once, on demand."""
        if self._prompt_chars is None:
            p = self.prompt
            self._prompt_chars = (len(p.get("prompt") or "") + len(p.get("suffix") or "")
                                  if isinstance(p, dict) and "prompt" in p
                                  else prompt_chars(p) if isinstance(p, dict) else 0)
        return self._prompt_chars

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.monotonic() - self.started) * 1000)


@dataclass(slots=True)
class Prepared:
    route: routing.Route
    body: dict[str, Any]
    stream: bool
    wants_usage: bool
    headers: Mapping[str, str]           # the client's (x-kilocode-* go on to the Kilo service)
    ex: Exchange
    fim: bool = False


_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique across runs (a random prefix per process) without a syscall per request."""
    return f"lg-{_ID_PREFIX}{next(_ID_COUNTER):010x}"


def _validate_common(body: dict[str, Any]) -> tuple[str | None, bool]:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", param="stream")
    return (model.strip() or None) if isinstance(model, str) else None, stream


def _validate_fim(body: Any) -> tuple[str, bool]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if not isinstance(body.get("prompt"), str):
        raise InvalidRequest("'prompt' (the code before the cursor) is required",
                             param="prompt")
    for name in ("suffix",):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"'{name}' must be a string", param=name)
    for name in ("max_tokens", "min_tokens"):
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise InvalidRequest(f"'{name}' must be a whole number", param=name)
    model, stream = _validate_common(body)
    if model is None:
        raise InvalidRequest("'model' is required, e.g. mistralai/codestral-2508",
                             param="model")
    return model, stream


def _validate(body: Any) -> tuple[str | None, bool]:
    """(model or None, stream) after checking the few fields the daemon itself relies on."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is required", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequest(f"messages[{i}] must be an object with a 'role'",
                                 param=f"messages[{i}]")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    return _validate_common(body)


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
        self._models_cache: tuple[Any, bytes] | None = None

    # ---- chat ------------------------------------------------------------------------------
    def accept(self, body: Any, *, headers: Mapping[str, str], client: str,
               request_id: str) -> Exchange:
        """The record of a request, from the moment it is accepted."""
        ex = Exchange(request_id, utc_text(), client, headers.get("User-Agent", ""),
                      self.requested_model(body))
        ex.mode = (headers.get("x-kilocode-mode") or "").strip().lower() or None
        return ex

    @staticmethod
    def requested_model(body: Any) -> str:
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else ""

    def prepare(self, ex: Exchange, body: Any, *, headers: Mapping[str, str]) -> Prepared:
        """Validate, resolve, apply the controls and route; raises GatewayError before any I/O
        (SPEC 4: virtual models, then controls, then the route)."""
        settings, cat = self.live.settings, self.live.catalog
        model, ex.stream = _validate(body)
        self.live.check_paused()
        resolved = routing.resolve_virtual(model, ex.mode, settings)
        found = canonical, entry = routing.lookup(resolved, cat, settings)
        ex.resolved_model, ex.provider = canonical, entry["provider"] if entry else \
            provider_of(canonical)
        free = routing.is_free(resolved, settings, cat, found=found)
        if ex.client == "anonymous" and not free:
            raise PaidModelAuthRequired(
                f"{canonical} is a paid model: present your local API key "
                "(`localgate token show`); without one only free and local models are served")
        self.controls.allow(client=ex.client, model=canonical, provider=ex.provider,
                            raw_prefix=resolved.partition("/")[0])
        ex.prompt = body
        if not free:
            ex.reservation = self.controls.reserve(
                ex.client, lambda: self._worst_case(body, entry, ex))
        rt = routing.route(resolved, settings, cat, self.keys.provider_key, found=found)
        ex.rt, ex.route = rt, rt.kind
        messages, ex.repairs = repair_tool_calls(body["messages"])
        if messages is not body["messages"]:
            body = {**body, "messages": messages}
        opts = body.get("stream_options") or {}
        return Prepared(rt, body, ex.stream, bool(opts.get("include_usage")), headers, ex)

    def prepare_fim(self, ex: Exchange, body: Any, *, headers: Mapping[str, str]) -> Prepared:
        """A fill-in-the-middle request along the same line: controls, then the route (SPEC 4,
        FIM). Local auth is required: the hosted FIM endpoint has no anonymous tier."""
        settings, cat = self.live.settings, self.live.catalog
        model, ex.stream = _validate_fim(body)
        self.live.check_paused()
        if ex.client == "anonymous":
            raise AuthRequired("fill-in-the-middle needs your local API key "
                               "(`localgate token show`)")
        rt = routing.route_fim(model, settings, cat, self.keys.provider_key)
        ex.resolved_model, ex.provider = rt.model, rt.provider
        self.controls.allow(client=ex.client, model=rt.model, provider=rt.provider,
                            raw_prefix=model.partition("/")[0])
        ex.prompt = body
        ex.reservation = self.controls.reserve(
            ex.client, lambda: self._worst_case(body, rt.entry, ex))
        ex.rt, ex.route = rt, rt.kind
        return Prepared(rt, body, ex.stream, True, headers, ex, fim=True)

    def admit_forward(self, ex: Exchange, body: Any) -> None:
        """An inference call that localgate forwards to the Kilo service as it is (Responses,
        Messages, embeddings ...): the allow lists and limits still apply, and it is logged,
        costed from whatever usage the service reports."""
        model = self.requested_model(body)
        ex.stream = bool(body.get("stream")) if isinstance(body, dict) else False
        self.live.check_paused()
        entry = self.live.catalog.get(model) if model else None
        ex.resolved_model, ex.provider = model, provider_of(model) if model else "kilo"
        free = model.endswith(":free") or bool(entry and entry.get("free"))
        if model:
            self.controls.allow(client=ex.client, model=model, provider=ex.provider,
                                raw_prefix=model.partition("/")[0])
        if not free:
            ex.reservation = self.controls.reserve(ex.client, lambda: 0)  # none is known
        kilo = self.live.settings.kilo
        ex.rt = routing.Route(model, ex.provider, routing.GATEWAY, kilo, model,
                              self.keys.provider_key(kilo), entry, free)
        ex.route = routing.GATEWAY

    @staticmethod
    def _worst_case(body: Mapping[str, Any], entry: Mapping[str, Any] | None,
                    ex: Exchange) -> int:
        out = body.get("max_completion_tokens") or body.get("max_tokens")
        if not isinstance(out, int) or isinstance(out, bool) or out <= 0:
            out = (entry or {}).get("max_completion_tokens") or DEFAULT_MAX_OUTPUT
        return worst_case(estimate_tokens(ex.prompt_chars()), int(out),
                          (entry or {}).get("pricing") or {})

    def _call(self, p: Prepared, rt: routing.Route) -> HttpCall:
        if p.fim:
            if rt.target.slug == "kilo":  # the hosted service's FIM endpoint, not the gateway's
                return build_fim(p.body, model=rt.upstream_model, api_key=rt.api_key,
                                 url=f"{rt.target.api_url}/api/fim/completions", stream=p.stream,
                                 fields=GATEWAY_FIM_FIELDS,
                                 extra_headers=_kilo_headers(p.headers))
            return build_fim(p.body, model=rt.upstream_model, api_key=rt.api_key,
                             url=f"{rt.target.base_url}/fim/completions", stream=p.stream)
        body = p.body
        extra: dict[str, str] = {}
        mistral = rt.target.slug == "mistral" and rt.kind == routing.BYOK
        if rt.target.slug == "openrouter" and rt.kind in (routing.GATEWAY, routing.FALLBACK):
            body = dict(body)
            routing.openrouter_hints(body, rt.provider)
        elif mistral:
            body = mistral_body(body)
            body["messages"], _ = rewrite_tool_call_ids(body["messages"], "mistral")
        if rt.target.slug == "kilo":
            extra = _kilo_headers(p.headers)
        return build_chat(body, model=rt.upstream_model, api_key=rt.api_key,
                          base_url=rt.target.base_url, stream=p.stream, extra_headers=extra,
                          request_usage=not mistral)

    async def open(self, p: Prepared) -> tuple[Any, routing.Route]:
        """Send upstream; a BYOK call that fails before its first byte goes once via the gateway.

        Returns (aiohttp response with headers read, the route that answered)."""
        rt = p.route
        try:
            resp = await self._send(p, rt)
        except UpstreamError as exc:
            fb = routing.fallback(rt, self.live.settings, self.keys.provider_key)
            if fb is None:
                raise
            log.warning("%s failed (%s); retrying via the gateway", rt.target.name, exc.message)
        else:
            if not rt.may_fall_back or not (resp.status == 429 or resp.status >= 500):
                return resp, rt
            fb = routing.fallback(rt, self.live.settings, self.keys.provider_key)
            if fb is None:
                return resp, rt
            log.warning("%s answered %s; retrying via the gateway", rt.target.name, resp.status)
            resp.release()
        p.ex.route = fb.kind
        return await self._send(p, fb), fb

    async def _send(self, p: Prepared, rt: routing.Route) -> Any:
        call = self._call(p, rt)
        return await self.upstream.open(call.method, call.url, headers=call.headers,
                                        data=call.body, who=rt.target.name)

    def byok_refusal(self, rt: routing.Route, status: int, body: bytes) -> GatewayError | None:
        """The plain-words error for a provider refusing the user's own key, else None."""
        if rt.kind != routing.BYOK or status not in _BYOK_REFUSALS:
            return None
        detail = _upstream_message(scrub(rt, body))
        return ByokRefused(
            f"[BYOK] {rt.target.name} {_BYOK_REFUSALS[status]} your own {rt.target.name} key "
            f"(HTTP {status})" + (f": {detail}" if detail else ""), status=status)

    def begin(self, ex: Exchange) -> None:
        """Write the in-flight row: from here on even a killed daemon leaves a record."""
        if self.spend_log is not None:
            self.spend_log.write(self._entry(ex, 0, None, accounting.Tokens()))

    def refuse(self, ex: Exchange, err: GatewayError) -> None:
        """A request refused before anything was sent: one complete row."""
        ex.status = "refused" if err.status in (401, 402, 403, 404, 429, 503) else "error"
        ex.http_status, ex.error = err.status, err.message
        self.finish(ex)

    def finish(self, ex: Exchange) -> None:
        """Settle the reservation to the real cost and complete the row."""
        ex.latency_ms = int((time.monotonic() - ex.started) * 1000)
        micros, source, tokens = self._cost(ex)
        if ex.reservation is not None:
            self.controls.settle(ex.reservation, micros)
        elif micros:
            self.controls.record(ex.client, micros)
        if self.spend_log is not None:
            self.spend_log.write(self._entry(ex, micros, source, tokens))
        if self.on_finish is not None:
            self.on_finish(ex)

    def usage_with_cost(self, ex: Exchange, usage: dict[str, Any]) -> dict[str, Any] | None:
        """`usage` plus cost fields for routes localgate costs itself (None: leave it be)."""
        ex.usage = usage
        if ex.route not in accounting.SELF_COSTED or "cost" in usage:
            return None
        return accounting.usage_with_cost(ex.route, usage, self._cost(ex)[0])

    def _cost(self, ex: Exchange) -> tuple[int, str | None, Any]:
        rt = ex.rt
        if rt is None:
            return 0, None, accounting.Tokens()
        if ex.cost is not None and ex.cost[0] is ex.usage:
            return ex.cost[1]  # costed already for the response's usage; same inputs
        ex.cost = (ex.usage, self._compute_cost(ex, rt))
        return ex.cost[1]

    def _compute_cost(self, ex: Exchange, rt: routing.Route) -> tuple[int, str | None, Any]:
        entry = rt.entry  # a fallback serves the same model, at the same catalog price
        return accounting.cost(ex.route, rt.free, ex.usage, (entry or {}).get("pricing"),
                               ex.prompt_chars, ex.content_chars,
                               failed=ex.http_status >= 400)

    @staticmethod
    def _entry(ex: Exchange, micros: int, source: str | None, tokens: Any) -> SpendEntry:
        return accounting.entry(
            id=ex.id, ts=ex.ts, client=ex.client, user_agent=ex.user_agent, model=ex.model,
            resolved_model=ex.resolved_model, provider=ex.provider, route=ex.route, mode=ex.mode,
            stream=ex.stream, status=ex.status, http_status=ex.http_status or None,
            tokens=tokens, micros=micros, source=source if ex.rt else None, ttft_ms=ex.ttft_ms,
            latency_ms=ex.latency_ms, repairs=ex.repairs, error=ex.error)

    # ---- catalog views ---------------------------------------------------------------------
    def _key_state(self) -> tuple[Any, ...]:
        s = self.live.settings
        return (id(s), self.live.catalog.version, id(self.live.catalog),
                tuple(bool(self.keys.provider_key(p)) for p in s.providers.values()))

    def model_entries(self) -> list[dict[str, Any]]:
        s, cat = self.live.settings, self.live.catalog
        has = {p.slug: bool(self.keys.provider_key(p)) for p in s.providers.values()
               if not p.gateway}
        out = [catalog_mod.public_model(v, has_key=False) for v in self._virtual_entries()]
        models = sorted(cat.models.values(),
                        key=lambda m: (m.get("preferred_index", 1_000_000),
                                       -(m.get("created") or 0)))
        out.extend(catalog_mod.public_model(m, has_key=has.get(m.get("provider", ""), False))
                   for m in models)
        return out

    def models_body(self) -> bytes:
        """`/models` JSON, cached until the settings, catalog or keys change."""
        state = self._key_state()
        if self._models_cache is None or self._models_cache[0] != state:
            body = json.dumps({"object": "list", "data": self.model_entries()}).encode()
            self._models_cache = (state, body)
        return self._models_cache[1]

    def _virtual_entries(self) -> list[dict[str, Any]]:
        s, cat = self.live.settings, self.live.catalog
        out = []
        names = [("localgate/default", f"localgate: default model ({s.default_model})")]
        names += [(n, f"{n}: picks a model by the x-kilocode-mode header (default {a.default})")
                  for n, a in s.auto.items()]
        for name, desc in names:
            try:
                target = cat.get(routing.resolve_virtual(name, None, s))
            except GatewayError:
                target = None
            out.append(catalog_mod.virtual_entry(name, target, desc))
        return out

    def providers_list(self) -> list[dict[str, Any]]:
        return [{"slug": p.slug, "name": p.name, "displayName": p.name, "baseUrl": p.base_url,
                 "byokEnabled": not p.free, "hasKey": bool(self.keys.provider_key(p))}
                for p in self.live.settings.providers.values()]


def _kilo_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's x-kilocode-* headers (mode, task id, feature, editor), for the Kilo service."""
    return {k: v for k, v in headers.items() if k.lower().startswith(_KILO_HEADER_PREFIX)}


def scrub(rt: routing.Route, data: bytes) -> bytes:
    """Upstream bytes with the key we presented replaced: providers echo refused keys, and
    nothing a client sees or the log keeps may show one."""
    if rt.api_key:
        key = rt.api_key.encode()
        if key in data:
            return data.replace(key, b"<your key>")
    return data


def _upstream_message(body: bytes) -> str:
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or "")[:300]
    if isinstance(obj, dict) and isinstance(obj.get("message"), str):
        return obj["message"][:300]
    return str(err or "")[:300]
