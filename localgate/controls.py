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
from fnmatch import fnmatchcase
from typing import Any

from localgate.config import Settings
from localgate.errors import Forbidden, GatewayError
from localgate.ledger import utc_text
from localgate.pricing import exact_dollars, micros_to_usd


class LimitExceeded(GatewayError):
    status, kind, default_code = 402, "insufficient_quota", "usage_limit_exceeded"


@dataclass(slots=True)
class Reservation:
    keys: tuple[tuple[str, ...], ...]  # the counters it holds against: day, month, client's day
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
        self._spent: dict[tuple[str, ...], int] = {}  # settled cost, per period key
        self._held: dict[tuple[str, ...], int] = {}   # worst cases of requests in flight
        self._keys: tuple[int, str, str] = (-1, "", "")  # (second, day key, month key)

    def _counters(self, client: str) -> tuple[tuple[str, ...], ...]:
        """The counters a request of `client` counts against now: (day), (month), (client's
        day); the period keys are worked out once a second (not per request)."""
        now = self._clock()
        second = int(now)
        if self._keys[0] != second:
            self._keys = (second, day_key(now), month_key(now))
        _, d, m = self._keys
        return ("day", d), ("month", m), ("client_day", d, client)

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
        if c is None and not s.allow_models and not s.allow_providers:
            return  # nothing to check (the usual case)
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

    def reserve(self, client: str, worst_case: Callable[[], int]) -> Reservation:
        """Admit a paid request and hold its worst case until it settles. While others are in
        flight it must fit: spent + held + its worst case <= limit, so parallel requests can
        never together overshoot. With nothing in flight it needs only spent < limit: a lone
        request is not refused because its worst case is large (IDEs often send no
        max_tokens), and can overshoot by at most itself."""
        s = self._settings()
        keys = self._counters(client)
        c = s.clients.get(client)
        limits = (s.daily_usd, s.monthly_usd, c.daily_usd if c else None)
        worst = 0
        if limits != (None, None, None):  # no limit: nothing to price
            worst = worst_case()
            for period, key, limit_usd in zip(_PERIODS, keys, limits):
                if limit_usd is None:
                    continue
                limit = round(limit_usd * 1_000_000)
                spent, held = self._spent.get(key, 0), self._held.get(key, 0)
                fits = spent < limit if held == 0 else spent + held + worst <= limit
                if not fits:
                    raise _exceeded(period, limit, spent, held, client)
        r = Reservation(keys, worst)
        self._add(self._held, r, worst)
        return r

    def settle(self, r: Reservation, actual: int) -> None:
        """Release the hold and count the real cost."""
        self._add(self._held, r, -r.micros)
        self._add(self._spent, r, actual)
        r.micros = 0

    def record(self, client: str, actual: int) -> None:
        """A cost that had no reservation (e.g. free routes that turned out to cost)."""
        self._add(self._spent, Reservation(self._counters(client), 0), actual)

    def spent_today(self) -> int:
        return self._spent.get(("day", day_key(self._clock())), 0)

    def spent_month(self) -> int:
        return self._spent.get(("month", month_key(self._clock())), 0)

    @staticmethod
    def _add(counters: dict[tuple[str, ...], int], r: Reservation, delta: int) -> None:
        for key in r.keys:
            counters[key] = counters.get(key, 0) + delta


_PERIODS = ("day", "month", "client_day")
_NAMES = {"day": "daily", "month": "monthly", "client_day": "this client's daily"}


def _exceeded(period: str, limit: int, spent: int, held: int, client: str) -> LimitExceeded:
    extra: dict[str, Any] = {"period": period, "limit_usd": micros_to_usd(limit),
                             "spent_usd": micros_to_usd(spent)}
    who = f" (client {client})" if period == "client_day" else ""
    msg = (f"{_NAMES[period]} spending limit of {exact_dollars(limit)}{who} reached: "
           f"{exact_dollars(spent)} spent")
    if held:
        msg += (f", and requests in flight may cost up to {exact_dollars(held)} more (they "
                "hold their worst case until they end; max_tokens lowers it)")
    return LimitExceeded(msg, extra=extra)
