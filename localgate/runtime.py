"""Running the server: headless in the foreground (`serve`), with signal handling, a state
file for `localgate status`, and a bounded graceful shutdown.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import socket
import sys

from aiohttp import web

from localgate import __version__, paths
from localgate.app import Built, build
from localgate.config import Settings, is_loopback

log = logging.getLogger("localgate")
SHUTDOWN_TIMEOUT_S = 5.0


class CannotListen(Exception):
    """The address cannot be listened on (bad host name, an address not on this machine)."""


class PortInUse(CannotListen):
    pass


class Running:
    """A started server: its runner, the port it got, and what was built."""

    def __init__(self, runner: web.AppRunner, port: int, built: Built) -> None:
        self.runner, self.port, self.built = runner, port, built

    async def stop(self) -> None:
        await self.runner.cleanup()
        await asyncio.to_thread(self.built.close)


async def start(settings: Settings, host: str, port: int) -> Running:
    """Build and listen (port 0 picks a free one). Raises PortInUse when the address is taken,
    CannotListen when it cannot be bound for another reason."""
    built = await asyncio.to_thread(build, settings)
    runner = web.AppRunner(built.app, handle_signals=False, access_log=None,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await asyncio.to_thread(built.close)
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            why = "the port is already in use" if exc.errno == errno.EADDRINUSE \
                else "permission denied"
            raise PortInUse(f"cannot listen on {host}:{port}: {why} (is another localgate "
                            "running? try `localgate status`, or `localgate serve --port N`)"
                            ) from exc
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    # only once the port is ours: a second daemon that cannot listen must not touch the log
    await asyncio.to_thread(built.recover)
    return Running(runner, _bound_port(runner) or port, built)


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM. Raises PortInUse when the address is taken."""
    running = await start(settings, host, port)
    bound = running.port
    if not is_loopback(host):
        log.warning("listening on %s: reachable from other machines; every request still needs "
                    "the local API key except free models", host)
    for w in settings.warnings:
        log.warning("%s", w)
    state = paths.state_file()
    await asyncio.to_thread(_write_state, state, host, bound)
    print(f"localgate {__version__} listening on http://{_url_host(host)}:{bound}/v1 "
          f"(default model {settings.default_model})", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await running.stop()
        await asyncio.to_thread(_remove_state, state)


def _bound_port(runner: web.AppRunner) -> int | None:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _write_state(path: os.PathLike[str], host: str, port: int) -> None:
    from pathlib import Path
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port,
                             "version": __version__}))


def _remove_state(path: os.PathLike[str]) -> None:
    from pathlib import Path
    try:
        data = json.loads(Path(path).read_text())
        if data.get("pid") == os.getpid():
            Path(path).unlink()
    except (OSError, ValueError):
        pass


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
