"""The `localgate` command: argument parsing and output only; the work lives elsewhere.

Every command that prints data takes --format (table|json, csv where rows make sense). Each
module registers its commands: daemon (run, serve, status, pause, resume, dashboard,
autostart), usage (models, default, token, log, spend, limits, config, setup), keys.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from localgate import __version__, paths
from localgate.cli import daemon, keys, usage
from localgate.cli.common import fail, fmt


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="localgate", description="A local OpenAI-compatible AI gateway on 127.0.0.1. "
        "Point clients at http://127.0.0.1:8642/v1 with the key from `localgate token show`.")
    ap.add_argument("--version", action="version", version=f"localgate {__version__}")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    daemon.register(sub)
    usage.register(sub)
    keys.add_parser(sub, fmt)
    usage.register_review(sub)
    usage.register_config(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.cmd is None:
        args = ap.parse_args(["run", *(argv or [])])
    from localgate.errors import ConfigError
    from localgate.ledger import Unreadable
    try:
        return int(args.fn(args))
    except BrokenPipeError:
        return 0
    except Unreadable as exc:
        return fail(str(exc))
    except ConfigError as exc:
        return fail(f"config error in {paths.config_file()}: {exc}", 2)

