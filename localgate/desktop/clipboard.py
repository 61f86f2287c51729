"""Putting text on the clipboard: GTK's own clipboard where the tray runs on GTK, else the
platform's tool (wl-copy, xclip, xsel, pbcopy, clip). The text goes through stdin, never argv:
it may be the API key. Blocking: call from the tray's worker thread, never the server loop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping

TOOLS_TIMEOUT_S = 5.0


class ClipboardUnavailable(Exception):
    """No way to reach a clipboard here; the message says what to install."""


def tools(platform: str | None = None,
          env: Mapping[str, str] | None = None) -> list[list[str]]:
    """Clipboard commands to try, best first, for this platform and session."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform == "darwin":
        return [["pbcopy"]]
    if platform == "win32":
        return [["clip"]]
    found = []
    if env.get("WAYLAND_DISPLAY"):
        found.append(["wl-copy"])
    if env.get("DISPLAY"):
        # xclip forks to serve the selection and its parent returns at once
        found += [["xclip", "-selection", "clipboard"],
                  ["xsel", "--clipboard", "--input"]]
    return found


def copy(text: str) -> None:
    """Copy `text` with the first clipboard tool found; raises ClipboardUnavailable."""
    candidates = tools()
    for argv in candidates:
        exe = shutil.which(argv[0])
        if exe is None:
            continue
        try:
            subprocess.run([exe, *argv[1:]], input=text.encode(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=TOOLS_TIMEOUT_S, check=True)
            return
        except (OSError, subprocess.SubprocessError) as exc:
            raise ClipboardUnavailable(f"{argv[0]} failed: {exc}") from None
    wanted = " or ".join(a[0] for a in candidates) or "a display"
    raise ClipboardUnavailable(f"no clipboard here: install {wanted} to copy from the tray")


def gtk_copy(text: str, timeout: float = TOOLS_TIMEOUT_S) -> None:
    """Copy through GTK's clipboard (the tray's process owns it while it runs; a clipboard
    manager keeps it after). Must run off the GTK thread: it waits for the GTK loop."""
    import gi
    gi.require_version("Gtk", "3.0")
    gi.require_version("Gdk", "3.0")
    from gi.repository import Gdk, GLib, Gtk

    done = threading.Event()
    failure: list[BaseException] = []

    def apply() -> bool:
        try:
            clip = Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD)
            clip.set_text(text, -1)
            clip.store()
        except Exception as exc:
            failure.append(exc)
        done.set()
        return False

    GLib.idle_add(apply)
    if not done.wait(timeout):
        raise ClipboardUnavailable("the desktop's clipboard did not answer")
    if failure:
        raise ClipboardUnavailable(f"the desktop's clipboard failed: {failure[0]}")
