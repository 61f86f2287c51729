"""Talking to a running daemon from another process (the CLI): find it through the state
file it writes, and ask it to reread its files. Stdlib only; loopback only.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from localgate import paths

def daemon() -> dict[str, Any] | None:
    """The running daemon's state file, if one is there and its pid lives."""
    try:
        state = json.loads(paths.state_file().read_text())
        if os.name == "posix":  # signal 0 probes the pid; on Windows 0 is CTRL_C_EVENT
            os.kill(int(state["pid"]), 0)
        return dict(state)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def daemon_url(state: dict[str, Any]) -> str:
    host = state.get("host", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{state['port']}"


def http(method: str, url: str, key: str | None = None, timeout: float = 2.0) -> Any:
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return json.loads(resp.read() or b"null")


def tell_daemon() -> str:
    """Ask a running daemon to reread config and keys (provider and client); a note for the
    user."""
    from localgate import keystore
    state = daemon()
    if not state:
        return ""
    try:
        http("POST", daemon_url(state) + "/localgate/reload", key=keystore.local_key(create=False))
        return " (the running daemon uses it from the next request)"
    except (OSError, ValueError, keystore.KeychainError) as exc:
        return (f" (the running daemon did not confirm: {exc}; it picks the change up "
                "within seconds)")


class NotRunning(Exception):
    """No daemon runs for this home (no state file, or its pid is gone)."""


class DaemonError(Exception):
    """The daemon refused the call or did not answer; the message says which, for people."""


def control(path: str, method: str = "POST", timeout: float = 5.0) -> Any:
    """Call the running daemon's `path` with the local key; its JSON answer.
    Raises NotRunning or DaemonError (with the daemon's own error message)."""
    import urllib.error

    from localgate import keystore
    state = daemon()
    if not state:
        raise NotRunning("no daemon is running (start one with `localgate` or "
                         "`localgate serve`)")
    url = daemon_url(state) + path
    try:
        return http(method, url, key=keystore.local_key(create=False), timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DaemonError(f"the daemon refused: {_error_message(exc)}") from None
    except (OSError, ValueError) as exc:
        raise DaemonError(f"the daemon at {daemon_url(state)} did not answer ({exc})") from None


def _error_message(exc: Any) -> str:
    try:
        return str(json.loads(exc.read())["error"]["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"HTTP {exc.code}"
