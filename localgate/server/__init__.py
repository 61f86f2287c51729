"""The aiohttp application: routes, middlewares, and the one ClientSession (cleanup_ctx).

make_app receives a gateway factory, so server/ never builds keystores, ledgers or providers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from localgate.auth import AnonymousLimiter, LocalAuth
from localgate.dashboard.routes import routes as dashboard_routes
from localgate.dashboard.sessions import Sessions
from localgate.gateway import Gateway
from localgate.server import handlers, inference
from localgate.server.codecs import EMBEDDINGS, MESSAGES, RESPONSES
from localgate.server.keys import AUTH, GATEWAY, LIMITER, RELOAD, SESSIONS
from localgate.server.middleware import make_guard

# The hosted gateway's prefixes (old and new) and the plain OpenAI one.
PREFIXES = ("/v1", "/api/v1", "/api/gateway", "/api/gateway/v1", "/api/openrouter",
            "/api/openrouter/v1")

GatewayFactory = Callable[[aiohttp.ClientSession], Gateway]
BackgroundTask = Callable[[Gateway], Awaitable[None]]


def make_app(new_gateway: GatewayFactory, *, auth: LocalAuth,
             reload: Callable[[], Awaitable[str]], allowed_hosts: frozenset[str] = frozenset(),
             allow_ip_hosts: bool = False, max_body_bytes: int = 64 * 2**20,
             allowed_origins: frozenset[str] = frozenset(),
             background: list[BackgroundTask] | None = None) -> web.Application:
    @contextlib.asynccontextmanager
    async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, ttl_dns_cache=300)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=True) as session:
            gw = new_gateway(session)
            app[GATEWAY] = gw
            tasks = [asyncio.create_task(job(gw)) for job in background or []]
            yield
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def end_streams(app: web.Application) -> None:
        # streams end with an error event, calls waiting for headers answer 503, at once
        await app[GATEWAY].upstream.stop()

    app = web.Application(middlewares=[make_guard(allowed_hosts, allow_ip_hosts,
                                                  allowed_origins)],
                          client_max_size=max_body_bytes)
    app[AUTH] = auth
    app[LIMITER] = AnonymousLimiter()
    app[RELOAD] = reload
    app[SESSIONS] = Sessions()
    app.cleanup_ctx.append(gateway_ctx)
    app.on_shutdown.append(end_streams)
    _routes(app)
    return app


def _routes(app: web.Application) -> None:
    r: Any = app.router
    r.add_get("/health", handlers.health)
    r.add_get("/healthz", handlers.health)
    r.add_post("/localgate/reload", handlers.reload)
    r.add_post("/api/fim/completions", inference.fim_completions)  # the Kilo service's own path
    for pre in PREFIXES:
        r.add_post(f"{pre}/chat/completions", inference.chat_completions)
        r.add_post(f"{pre}/fim/completions", inference.fim_completions)
        r.add_post(f"{pre}/embeddings", _embeddings)
        r.add_post(f"{pre}/responses", _responses)
        r.add_get(f"{pre}/models", handlers.list_models)
        r.add_get(pre + "/models/{model_id:.+}", handlers.get_model)
        r.add_get(f"{pre}/providers", handlers.list_providers)
        r.add_get(f"{pre}/models-by-provider", handlers.models_by_provider)
    r.add_post("/v1/messages", _messages)
    r.add_post("/v1/messages/count_tokens", handlers.count_tokens)
    for pre in ("/api/gateway", "/api/openrouter", "/api/v1"):
        r.add_post(f"{pre}/messages", _messages)
    r.add_route("*", "/api/{tail:.*}", handlers.passthrough)
    dashboard_routes(app)


async def _embeddings(request: web.Request) -> web.StreamResponse:
    return await inference.serve(request, EMBEDDINGS)


async def _responses(request: web.Request) -> web.StreamResponse:
    return await inference.serve(request, RESPONSES)


async def _messages(request: web.Request) -> web.StreamResponse:
    return await inference.serve(request, MESSAGES)
