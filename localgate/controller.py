"""What the tray may ask of a running daemon: the Controller Protocol and its Status snapshot.

Shared by desktop/tray.py (the caller) and desktop/control.py (the implementation over
runtime.ServerThread). Stdlib only: this module must not import aiohttp, pystray or anything
of the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Status:
    """A thread-safe snapshot of the daemon, as the tray shows it. Money in microdollars."""

    base_url: str                      # http://127.0.0.1:8642/v1
    default_model: str
    paused: bool = False
    spent_today: int = 0               # settled spend since local midnight
    daily_limit: int | None = None     # None: no daily limit
    over_limit: bool = False           # the daily or monthly limit is reached
    upstream_failed: bool = False      # the last upstream call failed
    autostart: bool = False            # start at login is enabled

    @property
    def state(self) -> str:
        """One word for the icon and the first menu line, most urgent first."""
        if self.paused:
            return "paused"
        if self.over_limit:
            return "over limit"
        if self.upstream_failed:
            return "upstream failed"
        return "running"


@dataclass(frozen=True, slots=True)
class ModelChoices:
    """The Default model submenu: each group's model ids, in menu order, without repeats."""

    auto: tuple[str, ...] = ()
    popular: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    groups: tuple[tuple[str, tuple[str, ...]], ...] = field(init=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        out: list[tuple[str, tuple[str, ...]]] = []
        for name, ids in (("auto", self.auto), ("popular", self.popular),
                          ("recent", self.recent)):
            fresh = []
            for i in ids:
                if i not in seen:
                    seen.add(i)
                    fresh.append(i)
            if fresh:
                out.append((name, tuple(fresh)))
        object.__setattr__(self, "groups", tuple(out))


class Controller(Protocol):
    """Plain commands across one thread boundary. Each returns quickly (it never waits on
    the network) and raises only for a real failure, which the tray logs and reports."""

    def status(self) -> Status: ...

    def model_choices(self) -> ModelChoices: ...

    def set_default_model(self, model: str) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def dashboard_url(self) -> str:
        """A fresh one-time login link to the dashboard (a secret: never log it)."""
        ...

    def api_key(self) -> str:
        """The default local API key (a secret: never log it)."""
        ...

    def set_autostart(self, enabled: bool) -> None: ...

    def quit(self) -> None:
        """Ask the daemon to stop; the tray's run loop returns once the icon is gone."""
        ...
