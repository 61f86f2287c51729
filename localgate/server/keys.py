"""Typed application state (aiohttp AppKey). Nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from localgate.auth import AnonymousLimiter, LocalAuth
from localgate.dashboard.sessions import Sessions
from localgate.gateway import Gateway

GATEWAY = web.AppKey("localgate.gateway", Gateway)
AUTH = web.AppKey("localgate.auth", LocalAuth)
LIMITER = web.AppKey("localgate.limiter", AnonymousLimiter)
STOPPING = web.AppKey("localgate.stopping", asyncio.Event)
# In-flight upstream responses, closed on shutdown so that streams end at once.
ACTIVE = web.AppKey("localgate.active", set[Any])
RELOAD = web.AppKey("localgate.reload", object)
SESSIONS = web.AppKey("localgate.sessions", Sessions)  # dashboard logins
REQUEST_ID = web.RequestKey("localgate.request_id", str)
