"""Opening a one-time dashboard login link in the user's browser without putting it on a
command line: `webbrowser` starts the browser with its URL in argv, where any local user can
read it, so the browser is sent to a 0600 file that forwards to the link (as Jupyter does).

Stdlib only (the CLI and the tray import it); blocking (writes a file, starts a browser).
"""

from __future__ import annotations

import html
import webbrowser
from pathlib import Path

from localgate import paths

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url={url}"><title>Opening localgate</title></head>
<body><p>Opening the localgate dashboard&hellip; <a href="{url}">continue</a></p></body></html>
"""


def forwarder(url: str, path: Path | None = None) -> Path:
    """Write the page that forwards to `url` (user-only, replaced on every call)."""
    path = path or paths.data_dir() / "dashboard-login.html"
    paths.write_private(path, _PAGE.format(url=html.escape(url, quote=True)).encode())
    return path


def open_login(url: str) -> bool:
    """Open the login link in the default browser; False when no browser could be started."""
    return webbrowser.open(forwarder(url).as_uri())
