"""The dashboard's routes, added to the daemon's app by server.make_app (one call)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from localgate.dashboard import api, pages


def routes(app: web.Application) -> None:
    r: Any = app.router
    r.add_get("/", pages.index)
    # no HEAD: a link checker's HEAD must not use up a one-time link
    r.add_get("/localgate/login", pages.login, allow_head=False)
    r.add_post("/localgate/login-link", pages.login_link)
    r.add_get("/localgate/session", pages.session)
    r.add_get("/localgate/static/{name}", pages.static)
    r.add_get("/localgate/spend", api.spend)
    r.add_get("/localgate/log", api.log)
    r.add_get("/localgate/overview", api.overview)
    r.add_post("/localgate/pause", api.pause)
    r.add_post("/localgate/resume", api.resume)
    r.add_post("/localgate/default", api.set_default)
    r.add_post("/localgate/limits", api.set_limits)
