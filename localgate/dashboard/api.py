"""The dashboard's JSON (local key or session): the spend log's review (exactly what
`localgate spend|log --format json` print), the overview the charts draw, and the controls
the tray also offers: pause/resume, the default model, the limits.

SQLite and config.toml are touched only through asyncio.to_thread. Must not import the
gateway's internals beyond `Live` state (paused, settings, catalog).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from localgate import __version__, choices, config, jsonfast, paths, review
from localgate.dashboard.access import caller
from localgate.errors import ConfigError, InvalidRequest
from localgate.server.keys import GATEWAY, RELOAD

MAX_DAYS = 366


def _json(obj: Any) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


def _bad(exc: review.QueryError) -> InvalidRequest:
    return InvalidRequest(str(exc), param=exc.param)


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"{name}: expected a whole number, got {text!r}",
                             param=name) from None


async def spend(request: web.Request) -> web.Response:
    """GET /localgate/spend?since=&until=&by= -> `localgate spend --format json`."""
    caller(request)
    q = request.query
    try:
        by = review.check_by(q.get("by"))
        since, until = review.window(q.get("since"), q.get("until"))
    except review.QueryError as exc:
        raise _bad(exc) from None
    return _json(await asyncio.to_thread(review.spend_json, paths.ledger_file(), by, since,
                                         until))


async def log(request: web.Request) -> web.Response:
    """GET /localgate/log?limit=&since=&until= -> `localgate log --format json`."""
    caller(request)
    q = request.query
    try:
        limit = review.check_limit(_int_param(request, "limit", review.LOG_LIMIT))
        since, until = review.window(q.get("since"), q.get("until"))
    except review.QueryError as exc:
        raise _bad(exc) from None
    return _json(await asyncio.to_thread(review.log_json, paths.ledger_file(), since, until,
                                         limit))


async def overview(request: web.Request) -> web.Response:
    """GET /localgate/overview?days=30: the daemon's state and the charts' data."""
    caller(request)
    days = _int_param(request, "days", 30)
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"days: expected 1 to {MAX_DAYS}, got {days}", param="days")
    doc = await asyncio.to_thread(review.overview, paths.ledger_file(), days)
    live = request.app[GATEWAY].live
    s = live.settings
    recent = doc.pop("recent")
    return _json({"version": __version__, "paused": live.paused,
                  "default_model": s.default_model,
                  "limits": {"daily_usd": s.daily_usd, "monthly_usd": s.monthly_usd},
                  **doc, "models": choices.offered(s, live.catalog, recent)})


async def pause(request: web.Request) -> web.Response:
    caller(request)
    request.app[GATEWAY].live.paused = True
    return _json({"paused": True})


async def resume(request: web.Request) -> web.Response:
    caller(request)
    request.app[GATEWAY].live.paused = False
    return _json({"paused": False})


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = jsonfast.loads(await request.read() or b"null")
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


async def _save(request: web.Request, section: str, values: dict[str, Any]) -> str:
    """Persist `[section]` values (None removes one) and apply them at once; the new default."""
    def write() -> None:
        for key, value in values.items():
            config.save_value(section, key, value)
    try:
        await asyncio.to_thread(write)
    except ConfigError as exc:
        raise InvalidRequest(f"not saved: {exc}") from exc
    reload: Any = request.app[RELOAD]
    return str(await reload())


async def set_default(request: web.Request) -> web.Response:
    """POST /localgate/default {"model": id}: checked as `localgate default` checks it."""
    caller(request)
    model = (await _body(request)).get("model")
    if not isinstance(model, str):
        raise InvalidRequest("'model' must be a model id (a string)", param="model")
    live = request.app[GATEWAY].live
    model = choices.check_default(model, live.settings, live.catalog)
    return _json({"default_model": await _save(request, "routing", {"default_model": model})})


async def set_limits(request: web.Request) -> web.Response:
    """POST /localgate/limits {"daily_usd": x|null, "monthly_usd": y|null}: a key left out
    stays as it is, null removes the limit."""
    caller(request)
    body = await _body(request)
    values: dict[str, Any] = {}
    for key in ("daily_usd", "monthly_usd"):
        if key not in body:
            continue
        v = body[key]
        ok = v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                           and math.isfinite(v) and 0 <= v <= 1e9)
        if not ok:
            raise InvalidRequest(f"{key}: expected an amount in USD from 0 to 1e9, or null "
                                 f"for no limit; got {v!r}", param=key)
        values[key] = v
    if not values:
        raise InvalidRequest("expected daily_usd and/or monthly_usd")
    await _save(request, "limits", values)
    s = request.app[GATEWAY].live.settings
    return _json({"daily_usd": s.daily_usd, "monthly_usd": s.monthly_usd})
