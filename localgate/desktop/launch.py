"""`localgate run`: the server on its own thread and loop, the tray on the main thread; or,
where no tray can be shown, nothing here (the caller serves headless after one line saying why).

Threads (STYLE 3.10): main = the tray backend's loop; `localgate-server` = asyncio (requests,
spend log); `tray-action` = menu actions; pystray's setup thread = the refresh timer.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from localgate import runtime
from localgate.config import Settings
from localgate.desktop import backend, clipboard

log = logging.getLogger("localgate")
GTK_BACKENDS = ("gtk", "appindicator")


def _say(line: str) -> None:
    print(f"localgate: {line}", file=sys.stderr, flush=True)


def run(settings: Settings, host: str, port: int) -> int | None:
    """Serve with the tray until Quit: 0 once stopped cleanly, 1 if the daemon could not
    start. None: no tray here (already said why in one line); the caller serves headless."""
    choice = backend.choose()
    if choice.backend is None:
        _say(choice.note)
        return None
    try:
        pystray = backend.import_pystray(choice.backend)
    except Exception as exc:  # not installed, or its backend cannot reach the display
        _say(f"no tray ({type(exc).__name__}: {exc}); running headless")
        return None
    server = runtime.ServerThread(settings, host, port)
    try:
        server.start()
    except runtime.CannotListen as exc:  # AlreadyRunning says where the first daemon is
        _say(str(exc))
        return 1
    try:
        tray = _make_tray(server, pystray, choice)
    except Exception as exc:
        _say(f"the tray could not start ({type(exc).__name__}: {exc}); running headless")
        server.stop()
        return None
    if choice.note and choice.backend != "xorg":
        log.warning("%s", choice.note)
    _handle_signals(tray)
    try:
        tray.run()
    except Exception as exc:  # the backend failed while running: keep serving without it
        _say(f"the tray stopped ({type(exc).__name__}: {exc}); running headless")
        server.stop()
        return None
    except KeyboardInterrupt:  # Windows' Ctrl-C: stop as Quit does
        pass
    stopped = server.stop()
    log.info("localgate stopped" if stopped else "localgate stopped with the server still busy")
    return 0


def _make_tray(server: runtime.ServerThread, pystray: Any, choice: backend.Choice) -> Any:
    from localgate.desktop.control import DaemonController
    from localgate.desktop.tray import Tray
    gtk = choice.backend in GTK_BACKENDS
    tray: Tray | None = None

    def ready() -> None:
        if gtk:  # pystray's GTK loop resets SIGINT: take it back on that (the main) thread
            backend.on_gtk_thread(lambda: _handle_signals(tray))
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


def _handle_signals(tray: Any) -> None:
    """SIGINT/SIGTERM (Ctrl-C, logout, `kill`) quit like the menu's Quit. Main thread only."""
    def stop(signum: int, frame: Any) -> None:
        log.info("signal %d: quitting", signum)
        tray.stop()
    handler: Callable[[int, Any], None] = stop
    for sig in (signal.SIGINT, signal.SIGTERM):
        # ValueError: not the main thread; OSError: not on this platform
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, handler)
