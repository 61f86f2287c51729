"""Typed application state (aiohttp AppKey). Nothing else."""

from __future__ import annotations


from aiohttp import web

from localgate.auth import AnonymousLimiter, LocalAuth
from localgate.dashboard.sessions import Sessions
from localgate.gateway import Gateway

GATEWAY = web.AppKey("localgate.gateway", Gateway)
AUTH = web.AppKey("localgate.auth", LocalAuth)
LIMITER = web.AppKey("localgate.limiter", AnonymousLimiter)
RELOAD = web.AppKey("localgate.reload", object)
SESSIONS = web.AppKey("localgate.sessions", Sessions)  # dashboard logins
REQUEST_ID = web.RequestKey("localgate.request_id", str)
# "openai" | "anthropic": the envelope errors of this request are written in
ERROR_FORMAT = web.RequestKey("localgate.error_format", str)
