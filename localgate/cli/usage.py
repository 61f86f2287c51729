"""`localgate models|default|log|spend|limits|config|token|setup`: the catalog, the settings,
the offline spend review and the client keys. Argument parsing and output only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from localgate import paths, remote
from localgate.cli.common import (fail, fmt, per_million, settings, signed_usd_arg,
                                  usd_arg)
from localgate.pricing import exact_dollars
from localgate.tables import print_rows

LOCAL_ASK_S = 0.5  # `localgate models` asks Ollama / LM Studio itself: offline stays fast


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="the model catalog: ids, context, prices per 1M tokens")
    p.add_argument("--provider", help="only this provider's models (e.g. anthropic)")
    p.add_argument("--free", action="store_true", help="only free models")
    fmt(p)
    p.set_defaults(fn=cmd_models)
    p = sub.add_parser("default", help="show, or set and persist, the default model")
    p.add_argument("model", nargs="?", help="e.g. anthropic/claude-sonnet-4.6 or kilo-auto/free")
    fmt(p, ("table", "json"))
    p.set_defaults(fn=cmd_default)
    p = sub.add_parser("token", help="local API keys that clients present to the daemon")
    tsub = p.add_subparsers(dest="token_cmd", metavar="ACTION", required=True)
    t = tsub.add_parser("show", help="print the default local API key (created on first use)")
    fmt(t, ("table", "json"))
    t = tsub.add_parser("create", help="create a named key (shown once) for one client")
    t.add_argument("name", help="a name for the client, e.g. vscode")
    t.add_argument("--daily-usd", type=usd_arg, help="this client's daily spending limit")
    fmt(t, ("table", "json"))
    t = tsub.add_parser("list", help="the named keys (never the keys themselves)")
    fmt(t)
    t = tsub.add_parser("revoke", help="revoke a named key (a running daemon refuses it at once)")
    t.add_argument("name")
    p.set_defaults(fn=cmd_token)


def register_review(sub: Any) -> None:
    p = sub.add_parser("log", help="the latest requests from the spend log, one row each")
    p.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")
    p.add_argument("--since", help="24h, 7d, 30d, today, or an ISO date/time")
    p.add_argument("--until", help="same forms as --since")
    fmt(p)
    p.set_defaults(fn=cmd_log)
    p = sub.add_parser("spend", help="spend totals and breakdowns from the spend log")
    p.add_argument("--since", help="24h, 7d, 30d, today, or an ISO date/time")
    p.add_argument("--until", help="same forms as --since")
    p.add_argument("--by", choices=["model", "provider", "day", "client", "route"],
                   help="break the total down")
    fmt(p)
    p.set_defaults(fn=cmd_spend)
    p = sub.add_parser("limits", help="show or set spending limits (a negative value removes one)")
    p.add_argument("--daily-usd", type=signed_usd_arg, help="machine-wide, per local day")
    p.add_argument("--monthly-usd", type=signed_usd_arg, help="machine-wide, per month")
    fmt(p, ("table", "json"))
    p.set_defaults(fn=cmd_limits)


def register_config(sub: Any) -> None:
    p = sub.add_parser("config", help="where the config lives; the effective config")
    csub = p.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    c = csub.add_parser("path", help="print the config file's path")
    fmt(c, ("table", "json"))
    c = csub.add_parser("show", help="print the effective configuration (no secrets)")
    fmt(c, ("table", "json"))
    p.set_defaults(fn=cmd_config)
    from localgate import setup
    p = sub.add_parser("setup", help="point a coding tool at the daemon (its own key, its own "
                       "config file, backed up)")
    p.add_argument("tool", choices=setup.NAMES, metavar="TOOL",
                   help=f"one of: {', '.join(setup.NAMES)}")
    p.add_argument("--print", action="store_true",
                   help="show what would be written (the key as a placeholder); change nothing")
    p.add_argument("--undo", action="store_true",
                   help="restore the tool's file from the backup and revoke the tool's key")
    p.add_argument("--model", default=setup.DEFAULT_MODEL,
                   help="the model id the tool's settings name (default: localgate/default, "
                   "the daemon's default model)")
    p.set_defaults(fn=cmd_setup)


def _local_keys() -> Any:
    """The user's keys, for a local server that requires one (the environment's alone when
    the keychain cannot be read)."""
    from localgate import keystore
    try:
        keys = keystore.Keys(keystore.open_store())
        keys.refresh()
    except keystore.KeychainError:
        keys = keystore.Keys(None)
    return keys.provider_key


def cmd_models(args: argparse.Namespace) -> int:
    from localgate import catalog, discovery
    from localgate.errors import ConfigError
    cat = catalog.load(paths.catalog_cache_file())
    try:
        for slug, entries in discovery.discover_now(settings(), LOCAL_ASK_S,
                                                    _local_keys()).items():
            cat.set_local(slug, entries)
    except ConfigError as exc:
        print(f"localgate: warning: local models not listed: config error: {exc}",
              file=sys.stderr)
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
                     "prompt_per_m": per_million(p.get("prompt")),
                     "completion_per_m": per_million(p.get("completion")),
                     "cache_read_per_m": per_million(p.get("input_cache_read")),
                     "cache_write_per_m": per_million(p.get("input_cache_write"))})
    cols = [("id", "model"), ("context_length", "context"), ("prompt_per_m", "$/1M in"),
            ("completion_per_m", "$/1M out"), ("cache_read_per_m", "$/1M cache read"),
            ("cache_write_per_m", "$/1M cache write")]
    if args.format != "table":
        cols = [("id", "id"), ("provider", "provider"), ("free", "free")] + cols[1:]
    print_rows(rows, cols, args.format)
    return 0


def cmd_default(args: argparse.Namespace) -> int:
    from localgate import catalog, choices, config
    from localgate.errors import ConfigError, GatewayError
    try:
        settings = config.load()
    except ConfigError as exc:
        return fail(f"config error: {exc}", 2)
    if args.model is None:
        print(json.dumps({"default_model": settings.default_model}) if args.format == "json"
              else settings.default_model)
        return 0
    try:
        model = choices.check_default(args.model, settings,
                                      catalog.load(paths.catalog_cache_file()))
        config.save_value("routing", "default_model", model)
    except GatewayError as exc:
        return fail(exc.message, 2)
    except ConfigError as exc:
        return fail(f"config error: {exc}", 2)
    print(f"default model: {model}{remote.tell_daemon()}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from localgate import clients, config, keystore
    from localgate.errors import ConfigError
    try:
        if args.token_cmd == "show":
            key = keystore.local_key(create=True)
            print(json.dumps({"name": "default", "key": key}) if args.format == "json" else key)
            return 0
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
        store = keystore.open_store()
        named = sorted(clients.load(store).items())
    except (clients.ClientError, ConfigError) as exc:
        return fail(str(exc), 2)
    except keystore.KeychainError as exc:
        return fail(str(exc))
    limits = {}
    try:
        limits = {n: c.daily_usd for n, c in config.load().clients.items()}
    except ConfigError:
        pass
    rows = [{"name": "default", "created": None, "revoked": None, "daily_usd": None,
             "source": "env" if os.environ.get("LOCALGATE_API_KEY") else store.kind}]
    rows += [{"name": n, "created": v.get("created"), "revoked": v.get("revoked"),
              "daily_usd": limits.get(n), "source": store.kind} for n, v in named]
    print_rows(rows, [("name", "name"), ("created", "created"), ("revoked", "revoked"),
                      ("daily_usd", "daily $ limit"), ("source", "source")], args.format)
    return 0


def _review_query(args: argparse.Namespace) -> tuple[str | None, str | None] | int:
    """(since, until) as UTC text, or the exit code of a bad option (shared with the HTTP API)."""
    from localgate import review
    try:
        if getattr(args, "limit", None) is not None:
            review.check_limit(args.limit)
        return review.window(args.since, args.until)
    except review.QueryError as exc:
        return fail(str(exc), 2)


def cmd_log(args: argparse.Namespace) -> int:
    from localgate import ledger, review
    window = _review_query(args)
    if isinstance(window, int):
        return window
    rows = review.log_json(paths.ledger_file(), *window, limit=args.limit)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        print_rows(rows, [(f, f) for f in ledger.FIELDS], "csv")
    elif not rows:
        print("no requests logged" + (" in that window" if paths.ledger_file().exists()
                                      else " yet"))
    else:
        print_rows(review.log_table_rows(rows), review.LOG_COLUMNS, "table")
    return 0


def cmd_spend(args: argparse.Namespace) -> int:
    from localgate import review
    window = _review_query(args)
    if isinstance(window, int):
        return window
    doc = review.spend_json(paths.ledger_file(), args.by, *window)
    rows, total = doc["rows"], doc["total"]
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return 0
    if args.format == "csv":
        key = args.by or "total"
        print_rows([*rows, {**total, key: "total"}],
                   [(k, k) for k in (key, "requests", "prompt_tokens", "completion_tokens",
                                     "cached_tokens", "cache_write_tokens", "reasoning_tokens",
                                     "cost_microdollars")], "csv")
        return 0
    cols = review.spend_columns(args.by)
    print(f"spend {review.window_label(*window)}")
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
        return fail(f"config error: {exc}", 2)
    changed = args.daily_usd is not None or args.monthly_usd is not None
    note = remote.tell_daemon() if changed else ""
    conn = review.open_log(paths.ledger_file())
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
        return fail(f"config error: {exc}", 2)
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


def cmd_setup(args: argparse.Namespace) -> int:
    from localgate import setup
    from localgate.setup.common import SetupError
    try:
        report = (setup.undo(args.tool, dry_run=args.print) if args.undo
                  else setup.apply(args.tool, model=args.model, dry_run=args.print))
    except SetupError as exc:
        return fail(str(exc), 2)
    print("\n".join(report.lines))
    return 0

