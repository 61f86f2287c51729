"""The `localgate` command: argument parsing and output only; the work lives elsewhere.

Every command that prints data takes --format (table|json, csv where rows make sense).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from localgate import __version__, paths, remote
from localgate.pricing import exact_dollars
from localgate.tables import print_rows

FORMATS = ("table", "json", "csv")


def _fail(msg: str, code: int = 1) -> int:
    print(f"localgate: {msg}", file=sys.stderr)
    return code


def _settings() -> Any:
    from localgate import config
    return config.load()


def _per_million(price: Any) -> float | None:
    try:
        return float(Decimal(str(price)) * 1_000_000)
    except (ArithmeticError, ValueError):
        return None


# ---- commands ----------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from localgate import config, runtime
    from localgate.errors import ConfigError
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = config.load()
    except ConfigError as exc:
        return _fail(f"config error in {paths.config_file()}: {exc}", 2)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if args.host and not config.is_loopback(host):
        print(f"localgate: warning: --host {host} exposes the daemon beyond this machine",
              file=sys.stderr)
    try:
        asyncio.run(runtime.serve(settings, host, port))
    except runtime.CannotListen as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # The tray arrives with its own issue; until then, and wherever no display exists, the
    # daemon runs headless and says so in one line.
    print("localgate: no tray available (headless); serving in the foreground",
          file=sys.stderr)
    return cmd_serve(args)


def cmd_status(args: argparse.Namespace) -> int:
    from localgate.errors import ConfigError
    state = remote.daemon()
    info: dict[str, Any] = {"running": False, "version": __version__}
    try:
        settings = _settings()
        info["default_model"] = settings.default_model
        info["daily_limit_usd"] = settings.daily_usd
        info["monthly_limit_usd"] = settings.monthly_usd
    except ConfigError as exc:
        info["config_error"] = str(exc)
    from localgate import controls, ledger, review
    try:
        conn = review.open_log(paths.ledger_file())
    except review.LogUnreadable as exc:
        conn, info["spend_log_error"] = None, str(exc)
    info["spent_today_usd"] = (ledger.spent_since(conn, controls.local_midnight_utc())
                               if conn else 0) / 1e6
    if state:
        url = remote.daemon_url(state)
        try:
            health = remote.http("GET", url + "/health", timeout=2.0)
            info.update(running=True, url=url + "/v1", pid=state["pid"],
                        default_model=health.get("default_model", info.get("default_model")),
                        daemon_version=health.get("version"))
            if isinstance(health.get("spend_log"), dict):
                info["spend_log"] = health["spend_log"]
        except (OSError, ValueError):
            info.update(url=url + "/v1", pid=state["pid"], note="process exists, not answering")
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        print(f"localgate {'running at ' + info['url'] if info['running'] else 'not running'}")
        for key in ("pid", "default_model", "config_error", "spend_log_error", "note"):
            if info.get(key) is not None:
                print(f"  {key.replace('_', ' ')}: {info[key]}")
        _print_spend_log(info.get("spend_log"))
        limit = info.get("daily_limit_usd")
        print(f"  spent today: {review.dollars(round(info['spent_today_usd'] * 1e6))}"
              + (f" of {exact_dollars(round(limit * 1_000_000))} daily limit"
                 if limit is not None else " (no daily limit)"))
    return 0 if info["running"] else 3


def _print_spend_log(state: dict[str, Any] | None) -> None:
    """What the daemon says of its spend log, where the user looks (only when it matters)."""
    if not state:
        return
    if not state.get("ok", True):
        print(f"  spend log: NOT WRITABLE ({state.get('error')}); {state.get('unwritten', 0)} "
              "rows unwritten, kept in memory and retried every second")
    if state.get("set_aside"):
        print(f"  spend log: a damaged spend.db was set aside as {state['set_aside']}")


def cmd_models(args: argparse.Namespace) -> int:
    from localgate import catalog
    cat = catalog.load(paths.catalog_cache_file())
    rows = []
    for m in sorted(cat.models.values(), key=lambda m: m["id"]):
        if args.provider and m.get("provider") != args.provider and \
                not m["id"].startswith(args.provider + "/"):
            continue
        if args.free and not m.get("free"):
            continue
        p = m.get("pricing") or {}
        rows.append({"id": m["id"], "provider": m.get("provider"), "free": bool(m.get("free")),
                     "context_length": m.get("context_length") or None,
                     "prompt_per_m": _per_million(p.get("prompt")),
                     "completion_per_m": _per_million(p.get("completion")),
                     "cache_read_per_m": _per_million(p.get("input_cache_read")),
                     "cache_write_per_m": _per_million(p.get("input_cache_write"))})
    cols = [("id", "model"), ("context_length", "context"), ("prompt_per_m", "$/1M in"),
            ("completion_per_m", "$/1M out"), ("cache_read_per_m", "$/1M cache read"),
            ("cache_write_per_m", "$/1M cache write")]
    if args.format != "table":
        cols = [("id", "id"), ("provider", "provider"), ("free", "free")] + cols[1:]
    print_rows(rows, cols, args.format)
    return 0


def cmd_default(args: argparse.Namespace) -> int:
    from localgate import catalog, config, routing
    from localgate.errors import ConfigError, GatewayError
    try:
        settings = config.load()
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2)
    if args.model is None:
        print(json.dumps({"default_model": settings.default_model}) if args.format == "json"
              else settings.default_model)
        return 0
    model = args.model.strip()
    if not model:
        return _fail("expected a model id, e.g. anthropic/claude-sonnet-4.6", 2)
    try:
        # resolve as the daemon will once this is the default: catches `localgate/default`
        # (a loop) and virtual models that end in an unknown provider
        trial = dataclasses.replace(settings, default_model=model)
        concrete = routing.resolve_virtual(None, None, trial)
        routing.is_free(concrete, trial, catalog.load(paths.catalog_cache_file()))
        config.save_value("routing", "default_model", model)
    except GatewayError as exc:
        return _fail(exc.message, 2)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2)
    print(f"default model: {model}{remote.tell_daemon()}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from localgate import clients, config, keystore
    from localgate.errors import ConfigError
    if args.token_cmd == "show":
        key = keystore.local_key(create=True)
        print(json.dumps({"name": "default", "key": key}) if args.format == "json" else key)
        return 0
    try:
        if args.token_cmd == "create":
            key = clients.create(args.name)
            if args.daily_usd is not None:
                config.save_value("clients", args.name, {"daily_usd": args.daily_usd})
            note = remote.tell_daemon()
            if args.format == "json":
                print(json.dumps({"name": args.name, "key": key, "daily_usd": args.daily_usd}))
            else:
                print(key)
                print(f"client {args.name!r} created{note}; the key is shown only this once",
                      file=sys.stderr)
            return 0
        if args.token_cmd == "revoke":
            clients.revoke(args.name)
            print(f"client {args.name!r} revoked{remote.tell_daemon()}")
            return 0
    except (clients.ClientError, ConfigError) as exc:
        return _fail(str(exc), 2)
    limits = {}
    try:
        limits = {n: c.daily_usd for n, c in config.load().clients.items()}
    except ConfigError:
        pass
    rows = [{"name": "default", "created": None, "revoked": None, "daily_usd": None,
             "source": "LOCALGATE_API_KEY" if os.environ.get("LOCALGATE_API_KEY") else "file"}]
    rows += [{"name": n, "created": v.get("created"), "revoked": v.get("revoked"),
              "daily_usd": limits.get(n), "source": "file"}
             for n, v in sorted(clients.load().items())]
    print_rows(rows, [("name", "name"), ("created", "created"), ("revoked", "revoked"),
                      ("daily_usd", "daily $ limit"), ("source", "source")], args.format)
    return 0


def _window(args: argparse.Namespace) -> tuple[str | None, str | None]:
    from localgate.review import parse_when
    return (parse_when(args.since) if args.since else None,
            parse_when(args.until) if args.until else None)


def _open_window(args: argparse.Namespace) -> tuple[Any, str | None, str | None] | int:
    """(spend-log connection or None, since, until), or the exit code of a bad window."""
    from localgate import review
    try:
        since, until = _window(args)
    except review.WindowError as exc:
        return _fail(str(exc), 2)
    try:
        return review.open_log(paths.ledger_file()), since, until
    except review.LogUnreadable as exc:
        return _fail(str(exc))


def cmd_log(args: argparse.Namespace) -> int:
    from localgate import ledger, review
    opened = _open_window(args)
    if isinstance(opened, int):
        return opened
    conn, since, until = opened
    rows = ledger.rows(conn, since=since, until=until, limit=args.limit) if conn else []
    if args.format == "table":
        if not rows:
            print("no requests logged" + (" in that window" if conn else " yet"))
            return 0
        print_rows(review.log_table_rows(rows), review.LOG_COLUMNS, "table")
    else:
        print_rows(rows, [(f, f) for f in ledger.FIELDS], args.format)
    return 0


def cmd_spend(args: argparse.Namespace) -> int:
    from localgate import review
    opened = _open_window(args)
    if isinstance(opened, int):
        return opened
    conn, since, until = opened
    if conn is None:
        rows, total = [], {"total": "total", "requests": 0, "prompt_tokens": 0,
                           "completion_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                           "reasoning_tokens": 0, "cost_microdollars": 0}
    else:
        rows, total = review.spend_summary(conn, args.by, since, until)
    if args.format == "json":
        print(json.dumps({"since": since, "until": until, "by": args.by, "rows": rows,
                          "total": total}, indent=2))
        return 0
    cols = review.spend_columns(args.by)
    if args.format == "csv":
        key = args.by or "total"
        print_rows([*rows, {**total, key: "total"}],
                   [(k, k) for k in (key, "requests", "prompt_tokens", "completion_tokens",
                                     "cached_tokens", "cache_write_tokens", "reasoning_tokens",
                                     "cost_microdollars")], "csv")
        return 0
    print(f"spend {review.window_label(since, until)}")
    shown = [review.with_dollars(r, args.by) for r in rows]
    shown.append(review.with_dollars({**total, cols[0][0]: "total"}))
    print_rows(shown, cols, "table")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    from localgate import config, controls, ledger, review
    from localgate.errors import ConfigError
    try:
        for flag, key in (("daily_usd", "daily_usd"), ("monthly_usd", "monthly_usd")):
            value = getattr(args, flag)
            if value is not None:
                config.save_value("limits", key, None if value < 0 else value)
        settings = config.load()
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2)
    changed = args.daily_usd is not None or args.monthly_usd is not None
    note = remote.tell_daemon() if changed else ""
    try:
        conn = review.open_log(paths.ledger_file())
    except review.LogUnreadable as exc:
        return _fail(str(exc))
    today = ledger.spent_since(conn, controls.local_midnight_utc()) if conn else 0
    month = ledger.spent_since(conn, controls.local_midnight_utc(month=True)) if conn else 0
    info = {"daily_usd": settings.daily_usd, "monthly_usd": settings.monthly_usd,
            "spent_today_usd": today / 1e6, "spent_month_usd": month / 1e6,
            "allow_models": list(settings.allow_models),
            "allow_providers": list(settings.allow_providers),
            "clients": {n: {"daily_usd": c.daily_usd} for n, c in settings.clients.items()}}
    if args.format == "json":
        print(json.dumps(info, indent=2))
        return 0
    def lim(v: float | None) -> str:
        return "none" if v is None else exact_dollars(round(v * 1_000_000))
    print(f"daily:   {review.dollars(today)} of {lim(settings.daily_usd)} (local day)")
    print(f"monthly: {review.dollars(month)} of {lim(settings.monthly_usd)}")
    print(f"models allowed:    {', '.join(settings.allow_models) or 'all'}")
    print(f"providers allowed: {', '.join(settings.allow_providers) or 'all'}")
    for n, c in settings.clients.items():
        print(f"client {n}: daily {lim(c.daily_usd)}")
    if changed:
        print(f"limits saved{note}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from localgate import config
    from localgate.errors import ConfigError
    if args.config_cmd == "path":
        print(json.dumps({"path": str(paths.config_file())}) if args.format == "json"
              else paths.config_file())
        return 0
    try:
        settings = config.load()
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2)
    view = config.public_view(settings)
    if args.format == "json":
        print(json.dumps(view, indent=2))
    else:
        import tomli_w
        print(f"# effective configuration ({paths.config_file()}); keys are never shown")
        print(tomli_w.dumps(view), end="")
    for w in settings.warnings:
        print(f"localgate: warning: {w}", file=sys.stderr)
    return 0


# ---- parser ------------------------------------------------------------------------------------

def _port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return port


def _usd_arg(text: str) -> float:
    value = _signed_usd_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an amount in USD >= 0, got {text!r}")
    return value


def _signed_usd_arg(text: str) -> float:
    if text.strip().lower() in ("none", "off"):
        return -1.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount in USD, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected an amount in USD, got {text!r}")
    return value


def _fmt(p: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    p.add_argument("--format", choices=choices, default="table", help="output format")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="localgate", description="A local OpenAI-compatible AI gateway on 127.0.0.1. "
        "Point clients at http://127.0.0.1:8642/v1 with the key from `localgate token show`.")
    ap.add_argument("--version", action="version", version=f"localgate {__version__}")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")

    def server_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="address to bind (default from config: 127.0.0.1)")
        p.add_argument("--port", type=_port_arg, help="port (default from config: 8642)")
        p.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"], help="log verbosity")

    p = sub.add_parser("run", help="start the daemon with its tray icon (headless without one)")
    server_args(p)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("serve", help="start the daemon headless, in the foreground")
    server_args(p)
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("status", help="is a daemon running, where, which default model")
    _fmt(p, ("table", "json"))
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("models", help="the model catalog: ids, context, prices per 1M tokens")
    p.add_argument("--provider", help="only this provider's models (e.g. anthropic)")
    p.add_argument("--free", action="store_true", help="only free models")
    _fmt(p)
    p.set_defaults(fn=cmd_models)
    p = sub.add_parser("default", help="show, or set and persist, the default model")
    p.add_argument("model", nargs="?", help="e.g. anthropic/claude-sonnet-4.6 or kilo-auto/free")
    _fmt(p, ("table", "json"))
    p.set_defaults(fn=cmd_default)
    p = sub.add_parser("token", help="local API keys that clients present to the daemon")
    tsub = p.add_subparsers(dest="token_cmd", metavar="ACTION", required=True)
    t = tsub.add_parser("show", help="print the default local API key (created on first use)")
    _fmt(t, ("table", "json"))
    t = tsub.add_parser("create", help="create a named key (shown once) for one client")
    t.add_argument("name", help="a name for the client, e.g. vscode")
    t.add_argument("--daily-usd", type=_usd_arg, help="this client's daily spending limit")
    _fmt(t, ("table", "json"))
    t = tsub.add_parser("list", help="the named keys (never the keys themselves)")
    _fmt(t)
    t = tsub.add_parser("revoke", help="revoke a named key (a running daemon refuses it at once)")
    t.add_argument("name")
    p.set_defaults(fn=cmd_token)
    p = sub.add_parser("log", help="the latest requests from the spend log, one row each")
    p.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")
    p.add_argument("--since", help="24h, 7d, 30d, today, or an ISO date/time")
    p.add_argument("--until", help="same forms as --since")
    _fmt(p)
    p.set_defaults(fn=cmd_log)
    p = sub.add_parser("spend", help="spend totals and breakdowns from the spend log")
    p.add_argument("--since", help="24h, 7d, 30d, today, or an ISO date/time")
    p.add_argument("--until", help="same forms as --since")
    p.add_argument("--by", choices=["model", "provider", "day", "client", "route"],
                   help="break the total down")
    _fmt(p)
    p.set_defaults(fn=cmd_spend)
    p = sub.add_parser("limits", help="show or set spending limits (a negative value removes one)")
    p.add_argument("--daily-usd", type=_signed_usd_arg, help="machine-wide, per local day")
    p.add_argument("--monthly-usd", type=_signed_usd_arg, help="machine-wide, per month")
    _fmt(p, ("table", "json"))
    p.set_defaults(fn=cmd_limits)
    p = sub.add_parser("config", help="where the config lives; the effective config")
    csub = p.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    c = csub.add_parser("path", help="print the config file's path")
    _fmt(c, ("table", "json"))
    c = csub.add_parser("show", help="print the effective configuration (no secrets)")
    _fmt(c, ("table", "json"))
    p.set_defaults(fn=cmd_config)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.cmd is None:
        args = ap.parse_args(["run", *(argv or [])])
    try:
        return int(args.fn(args))
    except BrokenPipeError:
        return 0
