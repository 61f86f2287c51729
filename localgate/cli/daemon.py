"""`localgate run|serve|status|pause|resume|dashboard|autostart`: the daemon and its controls.
Argument parsing and output only."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from localgate import __version__, paths, remote
from localgate.cli.common import fail, fmt, server_args, settings
from localgate.pricing import exact_dollars


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="start the daemon with its tray icon (headless without one)")
    server_args(p)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("serve", help="start the daemon headless, in the foreground")
    server_args(p)
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("status", help="is a daemon running, where, which default model")
    fmt(p, ("table", "json"))
    p.set_defaults(fn=cmd_status)
    for name, what in (("pause", "stop serving proxied requests (503 paused) until resume"),
                       ("resume", "serve proxied requests again after `localgate pause`")):
        p = sub.add_parser(name, help=what)
        p.set_defaults(fn=cmd_pause)
    p = sub.add_parser("dashboard", help="open the spend dashboard in the browser "
                       "(through a one-time login link)")
    p.add_argument("--print", action="store_true",
                   help="print the login link instead of opening a browser")
    p.set_defaults(fn=cmd_dashboard)
    p = sub.add_parser("autostart", help="start the daemon (with its tray) at login")
    asub = p.add_subparsers(dest="autostart_cmd", metavar="ACTION", required=True)
    a = asub.add_parser("enable", help="start at login: XDG autostart entry or systemd user "
                        "unit (Linux), launchd agent (macOS), Startup folder (Windows)")
    a.add_argument("--kind", choices=["xdg", "systemd", "launchd", "startup-folder"],
                   help="which entry (default: what fits this session)")
    asub.add_parser("disable", help="stop starting at login (removes the entry)")
    a = asub.add_parser("status", help="is start at login enabled, and with which entry")
    fmt(a, ("table", "json"))
    p.set_defaults(fn=cmd_autostart)


def _server_setup(args: argparse.Namespace) -> tuple[Any, str, int] | int:
    """Logging, settings, host and port for serve/run; or the exit code of a config error."""
    from localgate import keystore
    keystore.preload()  # keyring's backend discovery overlaps the imports and config below
    from localgate import config
    from localgate.errors import ConfigError
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = config.load()
    except ConfigError as exc:
        return fail(f"config error in {paths.config_file()}: {exc}", 2)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if args.host and not config.is_loopback(host):
        print(f"localgate: warning: --host {host} exposes the daemon beyond this machine",
              file=sys.stderr)
    return settings, host, port


def _serve_foreground(settings: Any, host: str, port: int) -> int:
    import asyncio

    from localgate import keystore, runtime
    try:
        asyncio.run(runtime.serve(settings, host, port))
    except runtime.CannotListen as exc:
        return fail(str(exc))
    except keystore.KeychainError as exc:
        return fail(f"cannot read keys: {exc}")
    except KeyboardInterrupt:
        pass
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    setup = _server_setup(args)
    return setup if isinstance(setup, int) else _serve_foreground(*setup)


def cmd_run(args: argparse.Namespace) -> int:
    setup = _server_setup(args)
    if isinstance(setup, int):
        return setup
    from localgate.desktop import launch
    return launch.run(*setup)  # headless, in one line saying why, where no tray can be shown


def cmd_autostart(args: argparse.Namespace) -> int:
    from localgate.desktop import autostart
    try:
        if args.autostart_cmd == "enable":
            entry = autostart.enable(args.kind)
            print(f"start at login enabled: {entry.describe()}\n  starts: "
                  f"{' '.join(entry.command)} (from your next login)")
            return 0
        if args.autostart_cmd == "disable":
            gone = autostart.disable()
            print("start at login disabled" + (f": removed {', '.join(map(str, gone))}"
                                               if gone else " (it was not enabled)"))
            return 0
        entry = autostart.status()
    except (OSError, autostart.AutostartError) as exc:
        return fail(f"autostart: {exc}")
    if args.format == "json":
        print(json.dumps(entry.as_dict(), indent=2))
        return 0
    print(f"start at login: {'enabled' if entry.enabled else 'disabled'}")
    print(f"  {'entry' if entry.enabled else 'would write'}: {entry.describe()}")
    print(f"  starts: {' '.join(entry.command)}")
    if entry.enabled and not entry.current:
        print("  note: the entry differs from what this localgate would write (another "
              "install or version, or another LOCALGATE_HOME); `enable` rewrites it")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    info = _status_info()
    if args.format == "json":
        print(json.dumps(info, indent=2))
        return 0 if info["running"] else 3
    print(f"localgate {'running at ' + info['url'] if info['running'] else 'not running'}"
          + (" (paused: proxied requests get 503 until `localgate resume`)"
             if info.get("paused") else ""))
    for key in ("pid", "default_model", "config_error", "spend_log_error", "note"):
        if info.get(key) is not None:
            print(f"  {key.replace('_', ' ')}: {info[key]}")
    _print_spend_log(info.get("spend_log"))
    from localgate import review
    limit = info.get("daily_limit_usd")
    print(f"  spent today: {review.dollars(round(info['spent_today_usd'] * 1e6))}"
          + (f" of {exact_dollars(round(limit * 1_000_000))} daily limit"
             if limit is not None else " (no daily limit)"))
    return 0 if info["running"] else 3


def _status_info() -> dict[str, Any]:
    """What `status` reports: the config, today's spend from the log, the daemon's /health."""
    from localgate import controls, ledger, review
    from localgate.errors import ConfigError
    info: dict[str, Any] = {"running": False, "version": __version__}
    try:
        current = settings()
        info.update(default_model=current.default_model, daily_limit_usd=current.daily_usd,
                    monthly_limit_usd=current.monthly_usd)
    except ConfigError as exc:
        info["config_error"] = str(exc)
    try:
        conn = review.open_log(paths.ledger_file())
    except ledger.Unreadable as exc:  # say so, and still say whether a daemon runs
        conn, info["spend_log_error"] = None, str(exc)
    info["spent_today_usd"] = (ledger.spent_since(conn, controls.local_midnight_utc())
                               if conn else 0) / 1e6
    state = remote.daemon()
    if state:
        url = remote.daemon_url(state)
        try:
            health = remote.http("GET", url + "/health", timeout=2.0)
            info.update(running=True, url=url + "/v1", pid=state["pid"],
                        default_model=health.get("default_model", info.get("default_model")),
                        daemon_version=health.get("version"), paused=health.get("paused"))
            if isinstance(health.get("spend_log"), dict):
                info["spend_log"] = health["spend_log"]
        except (OSError, ValueError):
            info.update(url=url + "/v1", pid=state["pid"], note="process exists, not answering")
    return info


def _print_spend_log(state: dict[str, Any] | None) -> None:
    """What the daemon says of its spend log, where the user looks (only when it matters)."""
    if not state:
        return
    if not state.get("ok", True):
        print(f"  spend log: NOT WRITABLE ({state.get('error')}); {state.get('unwritten', 0)} "
              "rows unwritten, kept in memory and retried every second")
    if state.get("set_aside"):
        print(f"  spend log: a damaged spend.db was set aside as {state['set_aside']}")


def cmd_pause(args: argparse.Namespace) -> int:
    """`pause` and `resume`: tell the running daemon (as the tray and the dashboard do)."""
    pause = args.cmd == "pause"
    try:
        remote.control("/localgate/pause" if pause else "/localgate/resume")
    except remote.NotRunning as exc:
        return fail(str(exc), 3)
    except remote.DaemonError as exc:
        return fail(str(exc))
    print("paused: proxied requests get 503 `paused` until `localgate resume`" if pause
          else "resumed: serving requests again")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        url = str(remote.control("/localgate/login-link")["url"])
    except remote.NotRunning as exc:
        return fail(str(exc), 3)
    except (remote.DaemonError, KeyError, TypeError) as exc:
        return fail(str(exc))
    if args.print:
        print(url)
        return 0
    from localgate.dashboard import opener
    if opener.open_login(url):
        print("opened the dashboard in your browser")
        return 0
    print("no browser could be started; open this link (it works once, for 2 minutes):")
    print(url)
    return 0

