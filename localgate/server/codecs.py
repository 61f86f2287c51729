"""Ingress codecs: how each client wire format enters `Gateway.prepare_*` and how the Answer is
written back in it. OpenAI chat and FIM pass through as they are; Anthropic Messages and OpenAI
Responses are translated to chat and back (localgate/ingress/) unless the route speaks them
natively; embeddings are OpenAI's own endpoint everywhere.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from localgate import relay
from localgate.errors import GatewayError
from localgate.gateway import Gateway, Prepared
from localgate.server.keys import ERROR_FORMAT
from localgate.streams import Answer


class Codec:
    """OpenAI chat: the lingua franca; nothing to translate."""

    kind = "chat"
    error_format = "openai"

    def mark(self, request: web.Request) -> None:
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


CHAT, FIM, EMBEDDINGS, FORWARD = Codec(), FimCodec(), EmbeddingsCodec(), ForwardCodec()
