"""The Controller the tray calls, over a daemon served by runtime.ServerThread.

Each method is called on a tray thread. What touches the daemon's live state runs on the
server loop (`ServerThread.call`/`soon`); files and SQLite are read here, off the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from localgate import choices, config, ledger, paths, runtime
from localgate.controller import ModelChoices, Status
from localgate.desktop import autostart

log = logging.getLogger("localgate")
RECENT_TTL_S = 10.0   # the spend log is read for recent models at most this often
RECENT_COUNT = 5


class DaemonController:
    def __init__(self, server: runtime.ServerThread) -> None:
        self._server = server
        running = server.running
        assert running is not None, "start the server first"
        self._running = running
        self._recent: tuple[float, tuple[str, ...]] = (-RECENT_TTL_S, ())
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host = self._server.host
        if host in ("0.0.0.0", "::", ""):  # listening everywhere: loopback reaches it too
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._running.port}"

    # ---- reads ----------------------------------------------------------------------------

    def status(self) -> Status:
        snap: dict[str, Any] = self._server.call(self._snapshot())
        return Status(base_url=self.base_url + "/v1", autostart=_autostart_enabled(), **snap)

    async def _snapshot(self) -> dict[str, Any]:
        live, controls = self._running.built.live, self._running.built.controls
        s = live.settings
        today, month = controls.spent_today(), controls.spent_month()
        daily = None if s.daily_usd is None else round(s.daily_usd * 1_000_000)
        monthly = None if s.monthly_usd is None else round(s.monthly_usd * 1_000_000)
        over = (daily is not None and today >= daily) or (monthly is not None and month >= monthly)
        return {"default_model": s.default_model, "paused": live.paused, "spent_today": today,
                "daily_limit": daily, "over_limit": over,
                "upstream_failed": live.upstream_failed}

    def model_choices(self) -> ModelChoices:
        """The same lists the dashboard offers (choices.offered), the current default always
        among them."""
        recent = self._recent_models()
        offer, default = self._server.call(self._offered(recent))
        auto, popular, rest = (tuple(offer[k]) for k in ("auto", "popular", "recent"))
        if default not in auto + popular + rest:
            rest = (default, *rest)  # the current default is always there to see
        return ModelChoices(auto=auto, popular=popular, recent=rest)

    async def _offered(self, recent: tuple[str, ...]) -> tuple[dict[str, Any], str]:
        live = self._running.built.live
        return (choices.offered(live.settings, live.catalog, recent),
                live.settings.default_model)

    def _recent_models(self) -> tuple[str, ...]:
        with self._lock:
            at, models = self._recent
            if time.monotonic() - at < RECENT_TTL_S:
                return models
            path = paths.ledger_file()
            found: tuple[str, ...] = ()
            if path.exists():
                conn = ledger.connect(path)
                try:
                    found = tuple(ledger.recent_models(conn, RECENT_COUNT))
                finally:
                    conn.close()
            self._recent = (time.monotonic(), found)
            return found

    def api_key(self) -> str:
        return self._running.built.local_key

    def dashboard_url(self) -> str:
        token = self._server.call(self._issue())
        return f"{self.base_url}/localgate/login?token={token}"

    async def _issue(self) -> str:
        from localgate.server.keys import SESSIONS
        token: str = self._running.built.app[SESSIONS].issue()
        return token

    # ---- commands ---------------------------------------------------------------------------

    def set_default_model(self, model: str) -> None:
        """Check it as `localgate default` does, persist to config.toml (here, off the loop),
        then apply it before the next request."""
        live = self._running.built.live
        model = choices.check_default(model, live.settings, live.catalog)
        config.save_value("routing", "default_model", model)
        self._server.call(self._reload(), timeout=15.0)

    async def _reload(self) -> str:
        from localgate.server.keys import RELOAD
        reload: Any = self._running.built.app[RELOAD]
        return str(await reload())

    def set_paused(self, paused: bool) -> None:
        self._server.soon(setattr, self._running.built.live, "paused", paused)
        log.info("%s from the tray", "paused" if paused else "resumed")

    def set_autostart(self, enabled: bool) -> None:
        if enabled:
            entry = autostart.enable()
            log.info("start at login enabled: %s", entry.describe())
        else:
            for path in autostart.disable():
                log.info("start at login disabled: removed %s", path)

    def quit(self) -> None:
        """Streams start ending now; the tray's caller joins the server once the icon is gone."""
        self._server.request_stop()


def _autostart_enabled() -> bool:
    try:
        return autostart.status().enabled
    except (OSError, autostart.AutostartError) as exc:
        log.debug("autostart status unavailable: %s", exc)
        return False
