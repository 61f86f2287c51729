"""Which tray, if any: the display and desktop checks that pick pystray's backend, or say why
the daemon runs headless, in one line.

On Linux the menu needs PyGObject (pystray's `appindicator` or `gtk` backend). PyGObject has
no wheels, so where the venv has none this module loads the distribution's `python3-gi` when
it was built for this interpreter's ABI (see README, "Tray"). Stdlib only at import time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("localgate")
SNI_WAIT_S = 5.0  # at login the tray host may start a moment after localgate
MENU_HINT = ("tray: this desktop shows no tray menu without PyGObject; click the icon to open "
             "the dashboard, or install the menu: sudo apt install python3-gi gir1.2-gtk-3.0 "
             "gir1.2-ayatanaappindicator3-0.1 (see README, Tray)")


@dataclass(frozen=True)
class Choice:
    backend: str | None    # a pystray backend name; None: run headless
    note: str = ""         # one line for the log: why headless, or how to get the menu


@dataclass
class Probes:
    """What the choice depends on, as functions, so that tests can state a desktop."""

    gtk: Callable[[], bool]
    appindicator: Callable[[], bool]
    sni_host: Callable[[], bool]
    xembed_tray: Callable[[str], bool]


def choose(env: Mapping[str, str] | None = None, platform: str | None = None,
           probes: Probes | None = None, wait_s: float = SNI_WAIT_S) -> Choice:
    """Pick the tray backend for this session (PYSTRAY_BACKEND, when set, wins)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    forced = env.get("PYSTRAY_BACKEND")
    if forced:
        return Choice(forced, MENU_HINT if forced == "xorg" else "")
    if platform == "darwin":
        return Choice("darwin")
    if platform == "win32":
        return Choice("win32")
    display, wayland = env.get("DISPLAY"), env.get("WAYLAND_DISPLAY")
    no_display = no_display_reason(env, platform)
    if no_display:
        return Choice(None, no_display)
    p = probes or real_probes()
    gtk = p.gtk()
    if not gtk:
        return Choice("xorg", MENU_HINT)
    sni = _wait_for(p.sni_host, wait_s if wayland else 0.0)
    if sni and p.appindicator():
        return Choice("appindicator")
    xembed = bool(display) and p.xembed_tray(display or "")
    if xembed:
        return Choice("gtk")
    if sni:  # a StatusNotifier-only host (GNOME's extension): an XEmbed icon would not show
        return Choice(None, "the tray here needs AppIndicator: running headless (sudo apt "
                            "install gir1.2-ayatanaappindicator3-0.1, then start again)")
    if wayland:
        return Choice(None, "this Wayland session has no StatusNotifier tray host: running "
                            "headless (on GNOME, the AppIndicator extension adds one)")
    return Choice("gtk", "tray: no system tray is running on this desktop yet; the icon "
                         "appears when one starts")


def no_display_reason(env: Mapping[str, str] | None = None,
                      platform: str | None = None) -> str:
    """Why no tray can be shown, known without probing anything ("" where one may be)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if platform in ("darwin", "win32") or env.get("PYSTRAY_BACKEND"):
        return ""
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return "no display: running headless (the tray needs a desktop session)"
    return ""


def _wait_for(probe: Callable[[], bool], wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        if probe():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


# ---- the real probes ------------------------------------------------------------------------

def real_probes() -> Probes:
    return Probes(_has_gtk, _has_appindicator, _sni_host, _xembed_tray)


def load_gi() -> bool:
    """Make `import gi` work: the venv's own PyGObject, else the system's when its extension
    matches this interpreter (same EXT_SUFFIX). True when gi is importable."""
    if "gi" in sys.modules:
        return True
    try:
        import gi  # noqa: F401
        return True
    except ImportError:
        pass
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for site in _system_sites():
        pkg = site / "gi"
        if not (pkg / "__init__.py").is_file() or not any(pkg.glob(f"_gi*{suffix}")):
            continue
        spec = importlib.util.spec_from_file_location(
            "gi", pkg / "__init__.py", submodule_search_locations=[str(pkg)])
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules["gi"] = module
        try:
            spec.loader.exec_module(module)
            log.debug("tray: using the system's PyGObject from %s", pkg)
            return True
        except Exception as exc:  # a broken or mismatched install: try the next one
            log.debug("tray: system PyGObject at %s unusable: %s", pkg, exc)
            for name in [n for n in sys.modules if n == "gi" or n.startswith("gi.")]:
                del sys.modules[name]
    return False


def _system_sites() -> list[Path]:
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return [Path(p) for p in ("/usr/lib/python3/dist-packages",  # Debian, Ubuntu
                              f"/usr/lib64/{ver}/site-packages",  # Fedora
                              f"/usr/lib/{ver}/site-packages",    # Arch, Fedora (noarch)
                              f"/usr/local/lib/{ver}/dist-packages")]


def _require(namespace: str, version: str) -> bool:
    if not load_gi():
        return False
    try:
        import gi
        if namespace == "Gtk" and "gi.repository.Gtk" not in sys.modules:
            # before GTK starts: the name the desktop, its window list and its
            # accessibility tree know the process by (not "__main__.py")
            from gi.repository import GLib
            GLib.set_prgname("localgate")
            GLib.set_application_name("localgate")
        gi.require_version(namespace, version)
        importlib.import_module(f"gi.repository.{namespace}")
        return True
    except (ImportError, ValueError) as exc:
        log.debug("tray: %s %s unavailable: %s", namespace, version, exc)
        return False


def _has_gtk() -> bool:
    return _require("Gtk", "3.0")


def _has_appindicator() -> bool:
    return _require("AyatanaAppIndicator3", "0.1") or _require("AppIndicator3", "0.1")


def _sni_host() -> bool:
    """Is a StatusNotifierWatcher (KDE, GNOME's AppIndicator extension, XFCE...) on the bus?"""
    try:
        from gi.repository import Gio, GLib
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "NameHasOwner",
                              GLib.Variant("(s)", ("org.kde.StatusNotifierWatcher",)),
                              GLib.VariantType("(b)"), Gio.DBusCallFlags.NONE, 1000, None)
        return bool(reply.unpack()[0])
    except Exception as exc:  # no session bus: no StatusNotifier host either
        log.debug("tray: no StatusNotifier check: %s", exc)
        return False


def _xembed_tray(display: str) -> bool:
    """Does an XEmbed system tray (trayer, stalonetray, XFCE's, MATE's...) own its selection?"""
    try:
        from Xlib import X
        from Xlib import display as xdisplay
        d = xdisplay.Display(display)
        try:
            atom = d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}")
            return bool(d.get_selection_owner(atom) != X.NONE)
        finally:
            d.close()
    except Exception as exc:
        log.debug("tray: no XEmbed check: %s", exc)
        return False


def import_pystray(backend: str) -> Any:
    """pystray with `backend`; raises ImportError (or the backend's own error) if it cannot
    start here."""
    if backend in ("gtk", "appindicator"):
        _has_gtk()  # names the process before GTK starts (a forced backend skips choose())
    if backend == "xorg":
        # python-xlib's display connection is safe across threads only with this imported
        # before the connection exists (pystray's xorg module opens one at import): pystray's
        # thread docks the icon while ours asks for clicks, and unlocked they could interleave
        # on the wire and lose the dock request
        import Xlib.threaded  # noqa: F401
    os.environ["PYSTRAY_BACKEND"] = backend  # pystray reads its backend at import
    import pystray
    return pystray


def on_gtk_thread(fn: Callable[[], None]) -> None:
    """Run `fn` on the GTK main loop (pystray's gtk/appindicator backends own it)."""
    from gi.repository import GLib

    def once() -> bool:
        try:
            fn()
        except Exception as exc:
            log.debug("tray: GTK call failed: %s", exc)
        return False
    GLib.idle_add(once)


def relabel_open_menu(icon: Any, changes: Mapping[str, str]) -> None:
    """Change labels of the icon's GTK menu in place, so an open menu shows them at once
    (pystray rebuilds menus only for the next time they open)."""
    def apply() -> None:
        menu = getattr(icon, "_menu_handle", None)
        if menu is None:
            return
        for child in menu.get_children():
            label = child.get_label() if hasattr(child, "get_label") else None
            if isinstance(label, str) and label in changes:
                child.set_label(changes[label])
    on_gtk_thread(apply)


def keep_xorg_docked(icon: Any, stopped: Callable[[float], bool]) -> None:
    """pystray's xorg backend asks the tray to embed its icon once; a tray that starts after
    us (a login race) or misses that request leaves the icon invisible. Ask again while the
    icon window is not embedded: every second at first, then every ten. Runs on its own
    thread until `stopped(timeout)` says so (python-xlib is thread-safe here: Xlib.threaded)."""
    window, display = getattr(icon, "_window", None), getattr(icon, "_display", None)
    dock = getattr(icon, "_dock_window", None)
    if window is None or display is None or dock is None:  # another pystray: nothing to do
        return
    root = display.screen().root
    waited = 0.0
    while not stopped(1.0 if waited < 30 else 10.0):
        waited += 1.0
        try:
            if window.query_tree().parent.id == root.id:  # not (or no longer) embedded
                dock()
        except Exception as exc:  # the window or the display is gone: we are stopping
            log.debug("tray: dock check stopped: %s", exc)
            return


def enable_xorg_clicks(icon: Any) -> None:
    """pystray 0.19's xorg backend never asks X for button presses on its icon window, so a
    click reaches nobody (pystray issue #151): ask for them, keeping its own event mask."""
    from Xlib import X
    window = getattr(icon, "_window", None)
    if window is None:  # another pystray version: nothing to mend
        return
    window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask |
                             X.ButtonPressMask)
    icon._display.flush()
