"""Running the server: headless in the foreground (`serve`), with signal handling, or on its own
thread and loop under the tray (`ServerThread`); a state file for `localgate status`, and a
bounded graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from localgate import __version__, lock, paths
from localgate.app import Built, build
from localgate.config import Settings, is_loopback

log = logging.getLogger("localgate")
T = TypeVar("T")
SHUTDOWN_TIMEOUT_S = 5.0


class _OneLineBadRequests(logging.Filter):
    """aiohttp logs each malformed request (a scanner, a broken client) at ERROR with a full
    traceback; one line is enough, and it names the fault only: the offending bytes may hold a
    key (a header line missing its colon)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            what = (str(exc.message).splitlines() or ["malformed"])[0].strip().rstrip(":")
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "malformed HTTP request from %s refused (400): %s", (
                peer, what)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_BAD_REQUESTS = _OneLineBadRequests()


def _quiet_aiohttp() -> None:
    logging.getLogger("aiohttp.server").addFilter(_BAD_REQUESTS)  # once: filters are a set


class CannotListen(Exception):
    """The address cannot be listened on (bad host name, an address not on this machine)."""


class PortInUse(CannotListen):
    pass


class AlreadyRunning(CannotListen):
    """Another daemon holds this home's lock (one daemon per LOCALGATE_HOME / user)."""


def _lock_home() -> lock.FileLock:
    held = lock.FileLock(paths.daemon_lock_file())
    try:
        held.acquire()
    except lock.Busy:
        raise AlreadyRunning(_already_running_message()) from None
    return held


def _already_running_message() -> str:
    where = ""
    try:
        state = json.loads(paths.state_file().read_text())
        host = state.get("host", "127.0.0.1")
        where = f" at http://{_url_host(host)}:{state['port']}/v1 (pid {state['pid']})"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return (f"localgate is already running{where} for {paths.data_dir()}; one daemon per "
            "home: stop it first (or use it: `localgate status`)")


class Running:
    """A started server: its runner, the port it got, and what was built."""

    def __init__(self, runner: web.AppRunner, port: int, built: Built,
                 home_lock: lock.FileLock) -> None:
        self.runner, self.port, self.built = runner, port, built
        self._lock = home_lock

    async def stop(self) -> None:
        try:
            await self.runner.cleanup()
            await asyncio.to_thread(self.built.close)
        finally:
            self._lock.release()


async def start(settings: Settings, host: str, port: int,
                before_serving: Callable[[int], Awaitable[None]] | None = None) -> Running:
    """Bind (port 0 picks a free one), build, recover the log, then serve.

    The socket is bound first, so a second daemon that cannot listen never touches the log,
    and requests are answered only once everything about a started daemon is true
    (`before_serving(port)` has run). Raises PortInUse, or CannotListen for other reasons."""
    _quiet_aiohttp()
    home_lock = await asyncio.to_thread(_lock_home)
    try:
        sock = await asyncio.to_thread(_bind, host, port)
    except BaseException:
        home_lock.release()
        raise
    try:
        built = await asyncio.to_thread(build, settings)
    except BaseException:
        sock.close()
        home_lock.release()
        raise
    runner = web.AppRunner(built.app, handle_signals=False, access_log=None,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S, handler_cancellation=True)
    await runner.setup()
    await asyncio.to_thread(built.recover)
    bound = int(sock.getsockname()[1])
    if before_serving is not None:
        await before_serving(bound)
    # what start-up built (the catalog, ~13k objects) lives as long as the daemon: keep it out
    # of the cyclic collector, whose full passes would otherwise add ms pauses to requests
    gc.freeze()
    await web.SockSite(runner, sock).start()  # connections made meanwhile wait in the backlog
    return Running(runner, bound, built, home_lock)


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":  # elsewhere SO_REUSEADDR lets a second process share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            why = "the port is already in use" if exc.errno == errno.EADDRINUSE \
                else "permission denied"
            raise PortInUse(f"cannot listen on {host}:{port}: {why} (is another localgate "
                            "running? try `localgate status`, or `localgate serve --port N`)"
                            ) from exc
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _announcer(settings: Settings, host: str, state: Path) -> Callable[[int], Awaitable[None]]:
    """What every started daemon does just before it answers: warnings, the state file, and
    one line saying where it listens."""
    async def announce(bound: int) -> None:
        if not is_loopback(host):
            log.warning("listening on %s: reachable from other machines; every request still "
                        "needs the local API key except free models", host)
        for w in settings.warnings:
            log.warning("%s", w)
        try:
            await asyncio.to_thread(_write_state, state, host, bound)
        except OSError as exc:  # a full disk must not stop the daemon (README: full disk)
            log.warning("cannot write %s (%s): `localgate status` will not find this daemon",
                        state, exc.strerror or exc)
        print(f"localgate {__version__} listening on http://{_url_host(host)}:{bound}/v1 "
              f"(default model {settings.default_model})", file=sys.stderr, flush=True)
    return announce


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM. Raises PortInUse when the address is taken."""
    state = paths.state_file()
    running = await start(settings, host, port,
                          before_serving=_announcer(settings, host, state))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):
            pass  # Windows: Ctrl-C arrives as KeyboardInterrupt and still reaches `finally`
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await running.stop()
        await asyncio.to_thread(_remove_state, state)


class ServerThread:
    """The daemon on a worker thread with its own event loop, for the tray, which owns the main
    thread (STYLE 3.10). Other threads reach the loop only through `call` and `soon`; `stop`
    is bounded."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings, self.host, self.port = settings, host, port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running: Running | None = None
        self._thread = threading.Thread(target=self._main, name="localgate-server", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping: asyncio.Event | None = None

    def start(self, timeout: float = 60.0) -> Running:
        """Start serving; returns once requests are answered. Raises what `start` raises
        (AlreadyRunning, PortInUse, CannotListen, ConfigError...) in the calling thread."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise CannotListen(f"the server did not start within {timeout:.0f} s")
        if self._error is not None:
            raise self._error
        assert self.running is not None
        return self.running

    def _main(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        state = paths.state_file()
        try:
            self.running = await start(self.settings, self.host, self.port,
                                       before_serving=_announcer(self.settings, self.host, state))
        except BaseException as exc:  # handed to the thread that called start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopping.wait()
            log.info("stopping")
        finally:
            await self.running.stop()  # ends streams, flushes the spend log, drops the lock
            await asyncio.to_thread(_remove_state, state)

    def call(self, coro: Coroutine[object, object, T], timeout: float = 5.0) -> T:
        """Run `coro` on the server loop and wait (at most `timeout`) for its result."""
        if self.loop is None or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def soon(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` on the server loop, without waiting."""
        if self.loop is None or self.loop.is_closed():
            raise RuntimeError("the server is not running")
        self.loop.call_soon_threadsafe(fn, *args)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        """Begin stopping (streams end, the log is flushed) without waiting."""
        loop, stopping = self.loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            # RuntimeError: the loop closed meanwhile, the thread is ending by itself
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop serving and wait for the thread; False (logged) if it is still alive."""
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the server thread did not stop within %.0f s", timeout)
            return False
        return True


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _write_state(path: Path, host: str, port: int) -> None:
    paths.write_private(path, json.dumps({"pid": os.getpid(), "host": host, "port": port,
                                          "version": __version__}).encode())


def _remove_state(path: Path) -> None:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("pid") == os.getpid():
            Path(path).unlink()
    except (OSError, ValueError):
        pass
