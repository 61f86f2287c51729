"""Ingress codecs: how each client wire format enters `Gateway.prepare_*` and how the Answer is
written back in it. OpenAI chat and FIM pass through as they are; Anthropic Messages and OpenAI
Responses are translated to chat and back (localgate/ingress/) unless the route speaks them
natively; embeddings are OpenAI's own endpoint everywhere.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from localgate import jsonfast, relay
from localgate.errors import GatewayError, InvalidRequest
from localgate.exchange import Prepared
from localgate.gateway import Gateway
from localgate.server.keys import ERROR_FORMAT
from localgate.streams import Answer


class Codec:
    """OpenAI chat: the lingua franca; nothing to translate."""

    kind = "chat"
    error_format = "openai"
    keepalive: bytes | None = None  # an event sent into a silent stream (between events)

    def mark(self, request: web.Request) -> None:
        if self.error_format != "openai":  # (the middleware's default)
            request[ERROR_FORMAT] = self.error_format

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        return gw.prepare(ex, body, headers=request.headers, gateway_path=gateway_path,
                          kilo_token=kilo_token)

    def body(self, answer: Answer, p: Prepared) -> bytes:
        assert answer.body is not None
        return answer.body

    def stream_encoder(self, answer: Answer, p: Prepared) -> Any:
        return None

    def error_event(self, err: GatewayError, answer: Answer, p: Prepared) -> bytes:
        if answer.format != "chat":
            return relay.native_error_event(answer.format, err.envelope()["error"])
        return relay.error_event(err.envelope()["error"], gen_id=None, model=None)


class FimCodec(Codec):
    kind = "fim"

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        return gw.prepare_fim(ex, body, headers=request.headers)


class EmbeddingsCodec(Codec):
    """POST /v1/embeddings: routed like chat (BYOK direct, else the gateway), sent as it is."""

    kind = name = "embeddings"
    max_field = None
    outputs = False

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        return gw.prepare_ingress(ex, body, self, headers=request.headers,
                                  kilo_token=kilo_token)

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        raise GatewayError("embeddings have no chat form")  # native everywhere (adapter)


class ForwardCodec(Codec):
    """A call to the Kilo service that can spend, forwarded as it is (legacy completions...)."""

    kind = name = "forward"
    max_field = None
    outputs = True

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        return gw.prepare_forward(ex, body, self, headers=request.headers,
                                  path=request.raw_path, kilo_token=kilo_token)

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        raise GatewayError("a forwarded call has no chat form")


class TranslatingCodec(Codec):
    """A client format that is translated to chat and back unless the route speaks it."""

    max_field: str | None = None
    outputs = True
    module: Any = None

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        return gw.prepare_ingress(ex, body, self, headers=request.headers,
                                  kilo_token=kilo_token)

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        chat: dict[str, Any] = self.module.to_chat(body)
        return chat

    def body(self, answer: Answer, p: Prepared) -> bytes:
        assert answer.body is not None
        if answer.format != "chat":
            return answer.body  # sent natively: the upstream's own bytes
        try:
            parsed = jsonfast.loads(answer.body)
        except ValueError:
            parsed = {"error": {"message": relay.error_text(answer.body)}}
        answer.headers["Content-Type"] = "application/json"
        if answer.status >= 400:
            return jsonfast.dumps(self.module.error_body(answer.status, parsed))
        return jsonfast.dumps(self._from_chat(parsed, p))

    def _from_chat(self, parsed: Any, p: Prepared) -> Any:
        return self.module.from_chat(parsed, model=p.ex.model or p.ex.resolved_model)


class ResponsesCodec(TranslatingCodec):
    """OpenAI Responses, stateless: passed to OpenAI (your key) and the hosted gateway as it
    is, translated to chat for every other route."""

    kind = name = "responses"
    max_field = "max_output_tokens"

    @property
    def module(self) -> Any:
        from localgate.ingress import responses
        return responses

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        if isinstance(body, dict) and body.get("previous_response_id") is not None:
            raise InvalidRequest("previous_response_id is not supported: localgate keeps no "
                                 "responses (it is stateless, as with store: false); send the "
                                 "whole conversation in `input`", param="previous_response_id")
        return super().prepare(gw, ex, body, request, kilo_token=kilo_token,
                               gateway_path=gateway_path)

    def _from_chat(self, parsed: Any, p: Prepared) -> Any:
        return self.module.from_chat(parsed, model=p.ex.model or p.ex.resolved_model,
                                     request=p.body)

    def stream_encoder(self, answer: Answer, p: Prepared) -> Any:
        if answer.format != "chat":
            return None
        return self.module.StreamEncoder(model=p.ex.model or p.ex.resolved_model,
                                         request=p.body)


class MessagesCodec(TranslatingCodec):
    """Anthropic Messages (Claude Code, the anthropic SDKs): passed through to Anthropic with
    your key, translated to chat for every other model; errors in Anthropic's envelope."""

    kind = name = "messages"
    max_field = "max_tokens"
    error_format = "anthropic"
    keepalive = b'event: ping\ndata: {"type": "ping"}\n\n'  # as Anthropic's own

    @property
    def module(self) -> Any:
        from localgate.ingress import messages
        return messages

    def prepare(self, gw: Gateway, ex: Any, body: Any, request: web.Request, *,
                kilo_token: str | None, gateway_path: bool) -> Prepared:
        model = body.get("model") if isinstance(body, dict) else None
        mapped = gw.live.catalog.by_native_id(model) if isinstance(model, str) else None
        return gw.prepare_ingress(ex, body, self, headers=request.headers,
                                  kilo_token=kilo_token, model=mapped)

    def stream_encoder(self, answer: Answer, p: Prepared) -> Any:
        if answer.format != "chat":
            return None
        return self.module.StreamEncoder(model=p.ex.model or p.ex.resolved_model)

    def error_event(self, err: GatewayError, answer: Answer, p: Prepared) -> bytes:
        body = self.module.error_body(err.status, err.envelope())
        return b"event: error\ndata: " + jsonfast.dumps(body) + b"\n\n"


CHAT, FIM, EMBEDDINGS, FORWARD = Codec(), FimCodec(), EmbeddingsCodec(), ForwardCodec()
RESPONSES, MESSAGES = ResponsesCodec(), MessagesCodec()
