"""Spending controls (SPEC section 6): allow lists, and daily/monthly/per-client limits that
hold under concurrency.

Each paid request reserves its worst-case cost before it is sent and settles to the real cost
when it ends. The counters live in memory and are touched only on the event loop, so check +
reserve is atomic; they are seeded from the spend log at start. "Day" is the local calendar
day. Pure apart from the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from localgate.config import Settings
from localgate.errors import Forbidden, GatewayError
from localgate.ledger import utc_text
from localgate.pricing import micros_to_usd

DEFAULT_MAX_OUTPUT = 32_768  # when neither max_tokens nor the catalog bounds the output


class LimitExceeded(GatewayError):
    status, kind, default_code = 402, "insufficient_quota", "usage_limit_exceeded"


@dataclass(slots=True)
class Reservation:
    client: str
    day: str
    month: str
    micros: int


def day_key(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t))


def month_key(t: float | None = None) -> str:
    return time.strftime("%Y-%m", time.localtime(t))


def local_midnight_utc(t: float | None = None, *, month: bool = False) -> str:
    """Start of the local day (or month) containing t, as the log's UTC timestamp text."""
    lt = time.localtime(t)
    start = time.mktime((lt.tm_year, lt.tm_mon, 1 if month else lt.tm_mday, 0, 0, 0, 0, 0, -1))
    return utc_text(start)


def _allowed(value: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)


class Controls:
    def __init__(self, settings: Callable[[], Settings],
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._spent: dict[tuple[str, ...], int] = {}  # settled + reserved, per period key

    def seed(self, day: int, month: int, per_client_day: Mapping[str, int]) -> None:
        """Add what the spend log says was spent today / this month before this start (on top
        of anything reserved since, so a request served meanwhile is not forgotten)."""
        now = self._clock()
        d, m = day_key(now), month_key(now)
        for key, micros in [(("day", d), day), (("month", m), month)] + [
                (("client_day", d, c), v) for c, v in per_client_day.items()]:
            self._spent[key] = self._spent.get(key, 0) + micros

    def allow(self, *, client: str, model: str, provider: str, raw_prefix: str) -> None:
        """Allow lists (machine-wide and the client's); raises Forbidden (403)."""
        s = self._settings()
        c = s.clients.get(client)
        for models, where in ((s.allow_models, "[limits]"),
                              (c.allow_models if c else (), f"[clients.{client}]")):
            if not _allowed(model, models):
                raise Forbidden(f"{model} is not in allow_models of {where}",
                                code="model_not_allowed", param="model")
        for provs, where in ((s.allow_providers, "[limits]"),
                             (c.allow_providers if c else (), f"[clients.{client}]")):
            if provs and not (_allowed(provider, provs) or _allowed(raw_prefix, provs)):
                raise Forbidden(f"provider {provider!r} is not in allow_providers of {where}",
                                code="provider_not_allowed", param="model")

    def reserve(self, client: str, worst_case: int) -> Reservation:
        """Check every limit against spent + in-flight + this request's worst case; reserve it."""
        s = self._settings()
        now = self._clock()
        d, m = day_key(now), month_key(now)
        c = s.clients.get(client)
        checks = [("day", ("day", d), s.daily_usd), ("month", ("month", m), s.monthly_usd),
                  ("client_day", ("client_day", d, client), c.daily_usd if c else None)]
        for period, key, limit_usd in checks:
            if limit_usd is None:
                continue
            limit = round(limit_usd * 1_000_000)
            spent = self._spent.get(key, 0)
            if spent + worst_case > limit:
                raise _exceeded(period, limit, spent, worst_case, client)
        r = Reservation(client, d, m, worst_case)
        self._add(r, worst_case)
        return r

    def settle(self, r: Reservation, actual: int) -> None:
        """Replace the reservation by the real cost."""
        self._add(r, actual - r.micros)
        r.micros = actual

    def record(self, client: str, actual: int) -> None:
        """A cost that had no reservation (e.g. free routes that turned out to cost)."""
        now = self._clock()
        self._add(Reservation(client, day_key(now), month_key(now), 0), actual)

    def spent_today(self) -> int:
        return self._spent.get(("day", day_key(self._clock())), 0)

    def _add(self, r: Reservation, delta: int) -> None:
        for key in (("day", r.day), ("month", r.month), ("client_day", r.day, r.client)):
            self._spent[key] = self._spent.get(key, 0) + delta


_NAMES = {"day": "daily", "month": "monthly", "client_day": "this client's daily"}


def _exceeded(period: str, limit: int, spent: int, worst: int, client: str) -> LimitExceeded:
    extra: dict[str, Any] = {"period": period, "limit_usd": micros_to_usd(limit),
                             "spent_usd": micros_to_usd(spent)}
    who = f" (client {client})" if period == "client_day" else ""
    msg = (f"{_NAMES[period]} spending limit of {_usd(limit)}{who} reached: "
           f"{_usd(spent)} spent or reserved by requests in flight")
    if spent < limit:
        msg += (f", and this request could cost up to {_usd(worst)} "
                "(set max_tokens to reserve less)")
    return LimitExceeded(msg, extra=extra)


def _usd(micros: int) -> str:
    """Dollars, exact: cents when whole, else every digit down to the microdollar (a sub-cent
    limit must not read as $0.00, nor $0.049 as $0.05)."""
    d = Decimal(micros) / 1_000_000
    return f"${d:,.2f}" if micros % 10_000 == 0 else f"${d:,.6f}".rstrip("0")
