"""The tray: a pystray icon and SPEC section 7's menu, a remote control over a Controller.

Knows only controller.Controller (plus pystray, Pillow and this package's icons and
clipboard). Menu callbacks never raise and never wait on the server: each action runs on one
worker thread, and a failure is logged and shown. Must not import aiohttp, server, gateway,
runtime or providers.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from localgate.controller import Controller, Status
from localgate.desktop import clipboard, icons

log = logging.getLogger("localgate")
REFRESH_S = 2.0  # how often the spend line and the icon's state are brought up to date
GROUP_TITLES = {"auto": "Auto", "popular": "Popular", "recent": "Recently used"}


def money(micros: int) -> str:
    """Microdollars as dollars for the menu: cents, or four places below one cent."""
    if 0 < micros < 10_000:
        return f"${micros / 1e6:.4f}"
    return f"${micros / 1e6:,.2f}"


def address_line(s: Status) -> str:
    address = s.base_url.split("://", 1)[-1].removesuffix("/v1")
    return f"localgate {address} — {s.state}"


def spend_line(s: Status) -> str:
    if s.daily_limit is None:
        return f"Today: {money(s.spent_today)} (no daily limit)"
    return f"Today: {money(s.spent_today)} of {money(s.daily_limit)}"


class Tray:
    """The icon, its menu and the refresh timer. `run()` blocks the calling (main) thread
    until Quit; it returns normally even where the backend fails while stopping."""

    def __init__(self, controller: Controller, *, pystray: Any,
                 copy: Callable[[str], None] | None = None,
                 relabel: Callable[[Any, dict[str, str]], None] | None = None,
                 on_ready: Callable[[], None] | None = None,
                 open_url: Callable[[str], bool] | None = None,
                 menu_hint: str | None = None) -> None:
        self._c = controller
        self._pystray = pystray
        self._copy = copy or clipboard.copy
        self._relabel = relabel      # changes an open menu's labels in place (GTK backends)
        self._on_ready = on_ready    # runs once the icon is shown
        self._open_url = open_url    # default: webbrowser.open
        self._menu_hint = menu_hint  # said once when this backend shows no menu
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tray-action")
        self._stop = threading.Event()
        self.status = controller.status()
        self.choices = controller.model_choices()
        self._shown_state = self.status.state
        self.icon = pystray.Icon("localgate", icons.tray_image(self.status.state),
                                 "localgate", menu=self._menu())

    # ---- the menu: rebuilt by pystray from these callables on every update_menu() --------

    def _menu(self) -> Any:
        ps = self._pystray
        item, sep = ps.MenuItem, ps.Menu.SEPARATOR
        return ps.Menu(
            item(lambda _: address_line(self.status), None, enabled=False),
            item("Default model", ps.Menu(lambda: self._model_items())),
            item(lambda _: spend_line(self.status), None, enabled=False),
            sep,
            item("Open dashboard", self._on(self._open_dashboard), default=True),
            item("Copy base URL", self._on(self._copy_base_url)),
            item("Copy API key", self._on(self._copy_api_key)),
            sep,
            item(lambda _: "Resume" if self.status.paused else "Pause",
                 self._on(self._toggle_pause)),
            item("Start at login", self._on(self._toggle_autostart),
                 checked=lambda _: self.status.autostart),
            sep,
            item("Quit", self._on(self._quit)),
        )

    def _model_items(self) -> Iterator[Any]:
        ps = self._pystray
        for i, (group, ids) in enumerate(self.choices.groups):
            if i:
                yield ps.Menu.SEPARATOR
            yield ps.MenuItem(GROUP_TITLES.get(group, group), None, enabled=False)
            for model in ids:
                yield ps.MenuItem(model, self._on(self._choose(model)), radio=True,
                                  checked=lambda _, m=model: self.status.default_model == m)

    # ---- actions: on the worker thread, never raising -----------------------------------

    def _on(self, action: Callable[[], None]) -> Callable[[Any, Any], None]:
        def callback(icon: Any, item: Any) -> None:
            try:
                self.submit(action)
            except RuntimeError:  # a click while quitting: the worker is gone
                log.debug("tray: %s ignored while quitting", callback.__name__)
        callback.__name__ = getattr(action, "__name__", "action")
        return callback

    def submit(self, action: Callable[[], None]) -> concurrent.futures.Future[None]:
        """Run `action` on the worker thread, then refresh; failures are logged and shown."""
        def run() -> None:
            try:
                action()
            except Exception as exc:  # the tray survives any failed action
                name = getattr(action, "__name__", "action").strip("_").replace("_", " ")
                log.warning("tray: %s failed: %s", name, exc)
                self.notify(f"{name} failed: {exc}")
            self.refresh(force=True)
        return self._pool.submit(run)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the actions submitted so far have run (for tests and shutdown)."""
        self._pool.submit(lambda: None).result(timeout)

    def _choose(self, model: str) -> Callable[[], None]:
        def choose_model() -> None:
            self._c.set_default_model(model)
            log.info("default model set to %s from the tray", model)
        return choose_model

    def _open_dashboard(self) -> None:
        import webbrowser
        url = self._c.dashboard_url()  # holds a one-time token: never logged
        if not (self._open_url or webbrowser.open)(url):
            raise RuntimeError("no web browser could be started")

    def _copy_base_url(self) -> None:
        self._copy(self.status.base_url)
        self.notify(f"Copied {self.status.base_url}")

    def _copy_api_key(self) -> None:
        self._copy(self._c.api_key())
        self.notify("Copied the API key")

    def _toggle_pause(self) -> None:
        self._c.set_paused(not self.status.paused)

    def _toggle_autostart(self) -> None:
        self._c.set_autostart(not self.status.autostart)

    def _quit(self) -> None:
        self._stop.set()
        self._c.quit()
        self.icon.stop()

    # ---- state --------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Fetch a new snapshot; redraw the icon and the menu when anything shown changed."""
        if self._stop.is_set():
            return
        try:
            new, choices = self._c.status(), self._c.model_choices()
        except Exception as exc:
            log.debug("tray: status unavailable: %s", exc)
            return
        old, old_labels = self.status, self._labels()
        rebuild = force or choices != self.choices or \
            (new.default_model, new.paused, new.autostart) != \
            (old.default_model, old.paused, old.autostart)
        self.status, self.choices = new, choices
        if new.state != self._shown_state:
            self._shown_state = new.state
            self.icon.icon = icons.tray_image(new.state)
        changes = {a: b for a, b in zip(old_labels, self._labels(), strict=True) if a != b}
        if rebuild or (changes and self._relabel is None):
            self._update_menu()
        elif changes and self._relabel is not None:
            # only text changed (the spend line, the state): an open menu shows it at once
            self._relabel(self.icon, changes)

    def _labels(self) -> tuple[str, str]:
        return address_line(self.status), spend_line(self.status)

    def _update_menu(self) -> None:
        try:
            self.icon.update_menu()
        except NotImplementedError:
            pass  # the dummy backend (tests) keeps no native menu
        except Exception as exc:
            log.debug("tray: menu update failed: %s", exc)

    def notify(self, message: str) -> None:
        """A desktop notification where there is a notification service; else only the log."""
        try:
            if getattr(self.icon, "HAS_NOTIFICATION", False):
                self.icon.notify(message, "localgate")
        except Exception as exc:  # e.g. no org.freedesktop.Notifications on the bus
            log.debug("tray: no notification (%s): %s", exc, message)

    def _ticker(self, icon: Any) -> None:
        icon.visible = True
        if self._on_ready is not None:
            self._on_ready()
        if self._menu_hint:
            log.warning("%s", self._menu_hint)
        while not self._stop.wait(REFRESH_S):
            self.refresh()

    def run(self) -> None:
        """Show the icon and serve its menu until Quit (or stop())."""
        try:
            self.icon.run(setup=self._ticker)
        except Exception as exc:
            # pystray's GTK backend closes its notification on the way out and raises where
            # no notification service runs: the icon is gone all the same
            if not self._stop.is_set():
                raise
            log.debug("tray: the backend failed while stopping (ignored): %s", exc)
        finally:
            self._stop.set()
            self._pool.shutdown(wait=True, cancel_futures=True)

    def stopped(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the tray to stop; whether it has."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Leave run() (from a signal handler or another thread)."""
        self._stop.set()
        try:
            self.icon.stop()
        except Exception as exc:
            log.debug("tray: stop failed: %s", exc)

