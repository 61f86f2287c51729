"""What every command module shares: failing with a message, --format, argument types."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

FORMATS = ("table", "json", "csv")


def fail(msg: str, code: int = 1) -> int:
    print(f"localgate: {msg}", file=sys.stderr)
    return code


def settings() -> Any:
    from localgate import config
    return config.load()


def per_million(price: Any) -> float | None:
    try:
        return float(Decimal(str(price)) * 1_000_000)
    except (ArithmeticError, ValueError):
        return None



def port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return port


def usd_arg(text: str) -> float:
    value = signed_usd_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an amount in USD >= 0, got {text!r}")
    return value


def signed_usd_arg(text: str) -> float:
    if text.strip().lower() in ("none", "off"):
        return -1.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount in USD, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected an amount in USD, got {text!r}")
    return value



def fmt(p: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    p.add_argument("--format", choices=choices, default="table", help="output format")


def server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to bind (default from config: 127.0.0.1)")
    p.add_argument("--port", type=port_arg, help="port (default from config: 8642)")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="log verbosity")
