"""Composition root: builds Settings, keys, catalog, Gateway and the aiohttp app.

The only module that imports from every layer. Blocking work (files) happens here, before the
loop serves, or through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from localgate import catalog as catalog_mod, clients, config, discovery, keystore, ledger, paths
from localgate.auth import LocalAuth
from localgate.catalog import Catalog
from localgate.config import Settings
from localgate.controls import Controls, local_midnight_utc
from localgate.errors import UpstreamError
from localgate.exchange import Exchange
from localgate.gateway import Gateway, Live
from localgate.ledger import LedgerWriter
from localgate.server import make_app
from localgate.upstream import Upstream, get_json

log = logging.getLogger("localgate")
REFRESH_EVERY_S = 6 * 3600
REFRESH_FIRST_DELAY_S = 1.0  # start-up never waits on the network
CONFIG_POLL_S = 2.0
LOCAL_FIRST_DELAY_S = 1.0   # local servers (Ollama, LM Studio): first look shortly after start,
LOCAL_EVERY_S = 60.0        # then once a minute; each call may take at most LOCAL_TIMEOUT_S
LOCAL_TIMEOUT_S = 2.0


@dataclass
class Built:
    app: web.Application
    live: Live
    local_key: str
    spend_log: LedgerWriter
    controls: Controls
    started: str  # UTC text: rows in flight from before this are a dead daemon's

    def recover(self) -> int:
        """After the port is ours: rows a killed daemon left in flight become `interrupted`,
        and the limits start from what the log says was spent. Blocking (SQLite)."""
        got = ledger.recover(self.spend_log.path, self.started, local_midnight_utc(),
                             local_midnight_utc(month=True))
        if got is None:
            return 0
        self.controls.seed(got.day, got.month, got.per_client_day)
        if got.interrupted:
            log.warning("%d request(s) were in flight when the daemon last stopped; "
                        "marked interrupted", got.interrupted)
        return got.interrupted

    def close(self) -> None:
        self.spend_log.close()


def _log_exchange(ex: Exchange) -> None:
    # spend.db records every request; stderr gets failures, and the rest only when debugging
    level = logging.WARNING if ex.status == "error" else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    u = ex.usage or {}
    log.log(level, "%s %s -> %s via %s [%s] %s %sms tokens=%s/%s%s", ex.id,
            ex.model or "(default)", ex.resolved_model, ex.route, ex.client, ex.status,
            ex.latency_ms,
             u.get("prompt_tokens", "-"), u.get("completion_tokens", "-"),
             f" repairs={ex.repairs}" if ex.repairs else "")


def build(settings: Settings, *, config_path: Path | None = None,
          catalog: Catalog | None = None) -> Built:
    """Everything the daemon needs, wired; blocking (reads files). Call before serving."""
    config_path = config_path or paths.config_file()
    live = Live(settings, catalog or catalog_mod.load(paths.catalog_cache_file()))
    store = keystore.open_store(adopt_fallback=True)
    note = keystore.notice(store)
    if note:
        log.warning("%s", note)
    local_key = keystore.local_key(create=True, store=store)
    assert local_key is not None
    keys = keystore.Keys(store)
    keys.refresh()
    named = {"digests": clients.active_digests(store)}

    def refresh_keys(always: bool) -> None:  # blocking: keychain reads
        if (always or keys.stale()) and keys.refresh():
            try:
                named["digests"] = clients.active_digests(store)
            except keystore.KeychainError as exc:
                log.warning("client keys not reread, the last ones stay in use: %s", exc)

    auth = LocalAuth(local_key, lambda: keys.provider_key(live.settings.kilo),
                     lambda: named["digests"])
    spend_log = LedgerWriter(paths.ledger_file())
    controls = Controls(lambda: live.settings)

    def new_gateway(session: aiohttp.ClientSession) -> Gateway:
        s = live.settings
        up = Upstream(session, connect_s=s.connect_timeout_s, first_byte_s=s.first_byte_timeout_s,
                      read_gap_s=s.read_gap_timeout_s)
        return Gateway(live, keys, up, controls=controls, spend_log=spend_log,
                       on_finish=_log_exchange)

    state = {"mtime": _mtime(config_path)}

    async def reload() -> str:
        await asyncio.to_thread(refresh_keys, True)  # first: a bad config must not keep old keys
        new = await asyncio.to_thread(config.load, config_path)
        state["mtime"] = await asyncio.to_thread(_mtime, config_path)
        _apply(live, new)
        return new.default_model

    async def watch_config(gw: Gateway) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            mtime = await asyncio.to_thread(_mtime, config_path)
            await asyncio.to_thread(refresh_keys, False)
            if mtime != state["mtime"]:
                state["mtime"] = mtime
                try:
                    _apply(live, await asyncio.to_thread(config.load, config_path))
                    log.info("config reloaded from %s", config_path)
                except Exception as exc:  # keep serving on the old settings
                    log.warning("config change ignored: %s", exc)

    background = [watch_config, watch_local_servers]
    if settings.catalog_refresh:
        background.append(refresh_catalog)
    allow_ip = not config.is_loopback(settings.host)
    app = make_app(new_gateway, auth=auth, reload=reload,
                   allowed_hosts=frozenset(h.lower() for h in settings.allowed_hosts),
                   allow_ip_hosts=allow_ip, max_body_bytes=int(settings.max_body_mb * 2**20),
                   allowed_origins=frozenset(settings.allowed_origins), background=background)
    return Built(app, live, local_key, spend_log, controls, ledger.utc_text())


def _apply(live: Live, new: Settings) -> None:
    for w in new.warnings:
        log.warning("%s", w)
    live.settings = new


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


async def refresh_catalog(gw: Gateway) -> None:
    """Fold the hosted `/models` into the catalog now and then; offline is normal, never fatal."""
    cache = paths.catalog_cache_file()
    await asyncio.sleep(REFRESH_FIRST_DELAY_S)
    while True:
        age = await asyncio.to_thread(catalog_mod.cache_age_s, cache)
        if age is None or age >= REFRESH_EVERY_S:
            await _refresh_once(gw, cache)
        await asyncio.sleep(REFRESH_EVERY_S)


async def _refresh_once(gw: Gateway, cache: Path) -> None:
    kilo = gw.live.settings.kilo
    try:
        doc: Any = await get_json(gw.upstream.session, f"{kilo.base_url}/models",
                                  headers={"Accept": "application/json"}, timeout_s=30)
    except UpstreamError as exc:
        log.info("catalog refresh skipped (%s); using the bundled catalog", exc.message)
        return
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or not data:
        log.info("catalog refresh skipped: the hosted /models had no data")
        return
    n = gw.live.catalog.merge_hosted(data)
    await asyncio.to_thread(catalog_mod.write_cache, cache, data)
    log.info("catalog refreshed: %d models from %s", n, kilo.base_url)


async def watch_local_servers(gw: Gateway) -> None:
    """Keep the local servers' models in the catalog: listed while a server answers, gone once
    it stops. Off the request path: a request never waits on this."""
    watch = discovery.LocalWatch()
    await asyncio.sleep(LOCAL_FIRST_DELAY_S)
    while True:
        try:
            await watch.check(gw.upstream.session, gw.live.settings, gw.live.catalog,
                              LOCAL_TIMEOUT_S, gw.keys.provider_key)
        except Exception:  # a bug here must not end the watch (or the daemon): say it, go on
            log.exception("looking for local model servers failed")
        await asyncio.sleep(LOCAL_EVERY_S)
