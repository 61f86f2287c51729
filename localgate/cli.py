"""The `localgate` command: argument parsing and output only; the work lives elsewhere.

Every command that prints data takes --format (table|json, csv where rows make sense).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from localgate import __version__, paths

FORMATS = ("table", "json", "csv")


def _fail(msg: str, code: int = 1) -> int:
    print(f"localgate: {msg}", file=sys.stderr)
    return code


def _settings() -> Any:
    from localgate import config
    return config.load()


# ---- output helpers ----------------------------------------------------------------------------

def print_rows(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], fmt: str) -> None:
    """rows as an aligned table, JSON (keys as given) or CSV."""
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow([k for k, _ in columns])
        for r in rows:
            w.writerow(["" if r.get(k) is None else r.get(k) for k, _ in columns])
        return
    cells = [[_cell(r.get(k)) for k, _ in columns] for r in rows]
    heads = [h for _, h in columns]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]
    numeric = [all(_is_num(r.get(k)) for r in rows) and rows != [] for k, _ in columns]
    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(vals, widths, numeric, strict=True)).rstrip()
    print(line(heads))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))


def _is_num(v: Any) -> bool:
    return v is None or (isinstance(v, int | float | Decimal) and not isinstance(v, bool))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _per_million(price: Any) -> float | None:
    try:
        return float(Decimal(str(price)) * 1_000_000)
    except (ArithmeticError, ValueError):
        return None


# ---- daemon discovery --------------------------------------------------------------------------

def _daemon() -> dict[str, Any] | None:
    """The running daemon's state file, if one is there and its pid lives."""
    try:
        state = json.loads(paths.state_file().read_text())
        os.kill(int(state["pid"]), 0)
        return dict(state)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _daemon_url(state: dict[str, Any]) -> str:
    host = state.get("host", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{state['port']}"


def _http(method: str, url: str, key: str | None = None, timeout: float = 2.0) -> Any:
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return json.loads(resp.read() or b"null")


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
    state = _daemon()
    info: dict[str, Any] = {"running": False, "version": __version__}
    try:
        settings = _settings()
        info["default_model"] = settings.default_model
        info["daily_limit_usd"] = settings.daily_usd
        info["monthly_limit_usd"] = settings.monthly_usd
    except ConfigError as exc:
        info["config_error"] = str(exc)
    if state:
        url = _daemon_url(state)
        try:
            health = _http("GET", url + "/health", timeout=2.0)
            info.update(running=True, url=url + "/v1", pid=state["pid"],
                        default_model=health.get("default_model", info.get("default_model")),
                        daemon_version=health.get("version"))
        except (OSError, ValueError):
            info.update(url=url + "/v1", pid=state["pid"], note="process exists, not answering")
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        print(f"localgate {'running at ' + info['url'] if info['running'] else 'not running'}")
        for key in ("pid", "default_model", "daily_limit_usd", "monthly_limit_usd",
                    "config_error", "note"):
            if info.get(key) is not None:
                print(f"  {key.replace('_', ' ')}: {info[key]}")
    return 0 if info["running"] else 3


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
    from localgate import catalog, config, keystore, routing
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
        path = config.save_value("routing", "default_model", model)
    except GatewayError as exc:
        return _fail(exc.message, 2)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2)
    state, live = _daemon(), ""
    if state:
        try:
            _http("POST", _daemon_url(state) + "/localgate/reload", key=keystore.local_key())
            live = " (the running daemon uses it from the next request)"
        except (OSError, ValueError) as exc:
            live = f" (the running daemon did not confirm: {exc}; it rereads {path.name} shortly)"
    print(f"default model: {model}{live}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from localgate import keystore
    if args.token_cmd == "show":
        key = keystore.local_key(create=True)
        print(json.dumps({"name": "default", "key": key}) if args.format == "json" else key)
        return 0
    return _fail("usage: localgate token show", 2)


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
    p.set_defaults(fn=cmd_token)
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
