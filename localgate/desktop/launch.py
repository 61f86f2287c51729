"""`localgate run`: the server on its own thread and loop at once, then the tray on the main
thread; where no tray can be shown, one line says why and the main thread only waits for a
signal (headless).

Threads (STYLE 3.10): main = the tray backend's loop (or the headless wait); `localgate-server`
= asyncio (requests, spend log); `tray-action` = menu actions; pystray's setup thread = the
refresh timer.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from localgate import runtime
from localgate.config import Settings
from localgate.desktop import backend, clipboard

log = logging.getLogger("localgate")
GTK_BACKENDS = ("gtk", "appindicator")


def _say(line: str) -> None:
    print(f"localgate: {line}", file=sys.stderr, flush=True)


def run(settings: Settings, host: str, port: int) -> int:
    """Serve, with the tray where one can be shown, until Quit or a signal: 0 once stopped
    cleanly, 1 if the daemon could not start (a second daemon says where the first is)."""
    stop = threading.Event()
    _handle_signals(stop.set)  # from the start: a signal while starting up stops cleanly too
    no_display = backend.no_display_reason()
    if no_display:
        _say(no_display)
    server = runtime.ServerThread(settings, host, port)
    try:
        server.start()  # requests are answered from here on, while the tray comes up
    except runtime.CannotListen as exc:
        _say(str(exc))
        return 1
    if no_display or stop.is_set():
        return _headless(server, stop)
    choice = backend.choose()
    if choice.backend is None:
        _say(choice.note)
        return _headless(server, stop)
    try:
        pystray = backend.import_pystray(choice.backend)
        tray = _make_tray(server, pystray, choice)
    except Exception as exc:  # not installed, or its backend cannot reach the display
        _say(f"no tray ({type(exc).__name__}: {exc}); running headless")
        return _headless(server, stop)
    if choice.note and choice.backend != "xorg":
        log.warning("%s", choice.note)
    _handle_signals(tray.stop)
    if stop.is_set():  # a signal came while the tray was coming up
        return _stopped(server)
    try:
        tray.run()
    except Exception as exc:  # the backend failed while running: keep serving without it
        _say(f"the tray stopped ({type(exc).__name__}: {exc}); running headless")
        _handle_signals(stop.set)
        return _headless(server, stop)
    except KeyboardInterrupt:  # Windows' Ctrl-C: stop as Quit does
        pass
    return _stopped(server)


def _headless(server: runtime.ServerThread, stop: threading.Event) -> int:
    """Serve until SIGINT/SIGTERM sets `stop` (or the server ends by itself)."""
    try:
        while not stop.wait(0.5) and server.alive:
            pass
    except KeyboardInterrupt:
        pass
    return _stopped(server)


def _stopped(server: runtime.ServerThread) -> int:
    stopped = server.stop()
    log.info("localgate stopped" if stopped else "localgate stopped with the server still busy")
    return 0


def _make_tray(server: runtime.ServerThread, pystray: Any, choice: backend.Choice) -> Any:
    from localgate.desktop.control import DaemonController
    from localgate.desktop.tray import Tray
    gtk = choice.backend in GTK_BACKENDS
    tray: Tray | None = None

    def ready() -> None:
        shown = tray
        if gtk and shown is not None:  # pystray's GTK loop resets SIGINT: take it back there
            backend.on_gtk_thread(lambda: _handle_signals(shown.stop))
        if choice.backend == "xorg" and shown is not None:  # dock again if the tray missed it
            threading.Thread(target=backend.keep_xorg_docked, args=(shown.icon, shown.stopped),
                             name="tray-dock", daemon=True).start()
    tray = Tray(DaemonController(server), pystray=pystray,
                copy=clipboard.gtk_copy if gtk else clipboard.copy,
                # gtk: an open menu is relabelled in place; appindicator: a StatusNotifier host
                # sees label changes only in a new menu, so there the menu is rebuilt
                relabel=backend.relabel_open_menu if choice.backend == "gtk" else None,
                on_ready=ready,
                menu_hint=choice.note if choice.backend == "xorg" else None)
    if choice.backend == "xorg":
        backend.enable_xorg_clicks(tray.icon)
    return tray


def _handle_signals(stop: Callable[[], None]) -> None:
    """SIGINT/SIGTERM (Ctrl-C, logout, `kill`) quit like the menu's Quit. Main thread only."""
    def handler(signum: int, frame: Any) -> None:
        log.info("signal %d: quitting", signum)
        stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # ValueError: not the main thread; OSError: not on this platform
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, handler)
