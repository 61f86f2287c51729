"""The tray for real: `localgate run` on a virtual X display (Xvfb) with a session D-Bus and an
XEmbed tray host (trayer), or a StatusNotifier host (status-notifier-watcher and
gtk-sni-tray-standalone, as KDE or GNOME's AppIndicator extension provide). Its icon docks; the
menu is opened with xdotool and its items are found and invoked by name through AT-SPI
(Debian's python3-pyatspi, run by the system python).
A screenshot of the open menu is kept in tests/artifacts/.

Without these tools the test skips with the reason, except in CI (CI set), where it must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w

from tests.conftest import LOCAL_KEY, auth, merge, provider_doc
from tests.fakes import FakeUpstream
from tests.test_daemon import OPENAI_KEY, daemon_env, serve

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
SYSTEM_PYTHON = "/usr/bin/python3"
TOOLS = ("Xvfb", "trayer", "xdotool", "dbus-daemon", "xclip", "status-notifier-watcher",
         "gtk-sni-tray-standalone")
SNI_HOST = "gtk-sni-tray-standalone"
HELLO = [{"role": "user", "content": "hi"}]


def _missing() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not Path(SYSTEM_PYTHON).exists():
        missing.append(SYSTEM_PYTHON)
    elif not any(Path(p, "pyatspi").is_dir() for p in ("/usr/lib/python3/dist-packages",)):
        missing.append("python3-pyatspi")
    if not Path("/usr/lib/python3/dist-packages/gi").is_dir():
        missing.append("python3-gi")
    return missing


def _require_tools() -> None:
    missing = _missing()
    if missing and not os.environ.get("CI"):
        pytest.skip(f"needs {', '.join(missing)} (Debian packages; `.ci/run` installs them)")
    assert not missing, f"CI must have {missing}: .ci/run installs them"


async def _run(*argv: str, env: dict[str, str], timeout: float = 10.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 16)
        if not chunk:
            break
        data += chunk
    return data.decode()


class Desktop:
    """Xvfb + a session bus + a tray host (trayer, or a StatusNotifier watcher and host),
    torn down in reverse order."""

    def __init__(self, tmp: Path, host: str = "xembed") -> None:
        self.tmp, self.host = tmp, host
        self.procs: list[asyncio.subprocess.Process] = []
        self.env: dict[str, str] = {}

    async def start(self) -> None:
        rfd, wfd = os.pipe()
        xlog = self.tmp / "xvfb.log"
        with xlog.open("wb") as errf:
            xvfb = await asyncio.create_subprocess_exec(
                "Xvfb", "-displayfd", str(wfd), "-screen", "0", "800x600x24", "-nolisten",
                "tcp", pass_fds=(wfd,), stdout=asyncio.subprocess.DEVNULL, stderr=errf)
        os.close(wfd)
        self.procs.append(xvfb)
        display = (await asyncio.wait_for(asyncio.to_thread(_read_line, rfd), 10)).strip()
        os.close(rfd)
        assert display.isdigit(), f"Xvfb gave no display: {xlog.read_text(errors='replace')}"
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY",)}
        env.update(DISPLAY=f":{display.strip()}", XDG_SESSION_TYPE="x11",
                   HOME=str(self.tmp / "user"), XDG_CONFIG_HOME=str(self.tmp / "user/.config"),
                   XDG_RUNTIME_DIR=str(self.tmp / "run"), NO_AT_BRIDGE="0")
        env.pop("PYSTRAY_BACKEND", None)
        for d in ("user", "run"):
            (self.tmp / d).mkdir(mode=0o700, exist_ok=True)
        bus = await asyncio.create_subprocess_exec(
            "dbus-daemon", "--session", "--nofork", "--print-address=1", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self.procs.append(bus)
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = (await asyncio.wait_for(bus.stdout.readline(),
                                                                  10)).decode().strip()
        self.env = env
        if self.host == "sni":
            await self._start_sni_host()
            return
        if self.host == "later":  # the tray host comes later (start_trayer): a login race
            return
        await self.start_trayer()

    async def start_trayer(self) -> None:
        env = self.env
        self.procs.append(await asyncio.create_subprocess_exec(
            "trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
            "--height", "32", "--SetDockType", "true", "--transparent", "false", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
        # pystray's xorg backend looks for the tray once, when the icon is made: the tray must
        # be up before localgate starts (a loaded machine starts trayer slowly)
        await _until(self._trayer_up, "trayer's panel on the display", within=10.0)

    async def _trayer_up(self) -> bool:
        code, out = await _run("xdotool", "search", "--onlyvisible", "--class", "trayer",
                               env=self.env)
        return code == 0 and bool(out.strip())

    async def _start_sni_host(self) -> None:
        for argv in (["status-notifier-watcher"], [SNI_HOST, "--top", "--end", "--size", "32"]):
            self.procs.append(await asyncio.create_subprocess_exec(
                *argv, env=self.env, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL))
            if argv[0] == "status-notifier-watcher":  # the host registers with it
                await _until(self._watcher_up, "the StatusNotifierWatcher on the bus")

    async def _watcher_up(self) -> bool:
        code, out = await _run("dbus-send", "--session", "--print-reply",
                               "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus.NameHasOwner",
                               "string:org.kde.StatusNotifierWatcher", env=self.env)
        return "boolean true" in out

    async def sni_icon(self, within: float = 10.0,
                       log: Any = lambda: "") -> tuple[int, int]:
        """The StatusNotifier item at the end of the host's bar, once it is drawn there."""
        deadline = time.monotonic() + within
        while True:
            code, out = await _run("xdotool", "search", "--onlyvisible", "--class", SNI_HOST,
                                   "getwindowgeometry", "%@", env=self.env)
            boxes = re.findall(r"Position: (\d+),(\d+).*?Geometry: (\d+)x(\d+)", out, re.S)
            bars = [tuple(map(int, b)) for b in boxes if int(b[2]) > 100]
            if bars:
                x, y, w, h = bars[0]
                from PIL import Image, ImageChops, ImageGrab
                shot = await asyncio.to_thread(ImageGrab.grab, xdisplay=self.env["DISPLAY"])
                slot = shot.crop((x + w - h, y, x + w, y + h))  # where an item goes (--end)
                bare = Image.new(slot.mode, slot.size, shot.getpixel((x + 2, y + 2)))
                if ImageChops.difference(slot, bare).getbbox() is not None:
                    return x + w - h // 2, y + h // 2
            if time.monotonic() > deadline:
                await self.screenshot(ARTIFACTS / "statusnotifier-no-item.png")
                pytest.fail(f"no item in the StatusNotifier host within {within} s: {out}\n"
                            f"{log()}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        for p in reversed(self.procs):
            if p.returncode is None:
                p.terminate()
                try:
                    await asyncio.wait_for(p.wait(), 5)
                except TimeoutError:
                    p.kill()
                    await p.wait()

    async def icon_center(self, within: float = 10.0,
                          log: Any = lambda: "") -> tuple[int, int]:
        """Where the docked icon is: the middle of trayer's panel once it holds one icon."""
        deadline = time.monotonic() + within
        while True:
            code, out = await _run("xdotool", "search", "--onlyvisible", "--class", "trayer",
                                   "getwindowgeometry", "%@", env=self.env)
            boxes = re.findall(r"Position: (\d+),(\d+).*?Geometry: (\d+)x(\d+)", out, re.S)
            for x, y, w, h in map(lambda b: tuple(map(int, b)), boxes):
                if w >= 24 and h >= 24:  # the panel grows from its empty size when docked
                    return x + w // 2, y + h // 2
            if time.monotonic() > deadline:
                pytest.fail(f"no icon docked in trayer within {within} s: {out}\n{log()}")
            await asyncio.sleep(0.2)

    async def open_menu(self, at: tuple[int, int]) -> None:
        # a menu left open (a StatusNotifier host keeps it open after a submenu item was
        # activated) would take the click to close: Escape first, then move in and click
        code, out = await _run("xdotool", "key", "Escape", "key", "Escape", "sleep", "0.1",
                               "mousemove", str(at[0]), str(at[1]), "sleep", "0.1", "click", "3",
                               env=self.env)
        assert code == 0, out

    async def close_menu(self) -> None:
        for _ in range(2):  # the submenu, then the menu
            code, out = await _run("xdotool", "key", "Escape", env=self.env)
            assert code == 0, out

    async def driver(self, *args: str) -> Any:
        app = ["--app", SNI_HOST] if self.host == "sni" else []  # the host draws the menu
        code, out = await _run(SYSTEM_PYTHON, str(HERE / "atspi_driver.py"), *args, *app,
                               env=self.env, timeout=20)
        assert code == 0, f"atspi_driver {args}: {out}"
        return json.loads(out.strip().splitlines()[-1])

    async def invoke(self, at: tuple[int, int], name: str) -> None:
        await self.open_menu(at)
        await self.driver("invoke", name)

    async def screenshot(self, path: Path) -> None:
        from PIL import ImageGrab
        path.parent.mkdir(exist_ok=True)
        img = await asyncio.to_thread(ImageGrab.grab, xdisplay=self.env["DISPLAY"])
        await asyncio.to_thread(img.save, path)


@contextlib.asynccontextmanager
async def desktop(tmp: Path, host: str = "xembed") -> AsyncIterator[Desktop]:
    d = Desktop(tmp, host)
    try:
        await d.start()
        yield d
    finally:
        await d.stop()


async def _until(check: Any, what: str, within: float = 5.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {within} s")
        await asyncio.sleep(0.1)


async def _get(url: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.request(kw.pop("method", "GET"), url + path,
                                                        **kw) as r:
        return r.status, r.headers, await r.json(content_type=None)


async def test_tray_menu_on_a_real_desktop(home: Path, fake: FakeUpstream,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    _require_tools()
    doc = merge(provider_doc(fake.url), {"limits": {"daily_usd": 5.0}})
    (home / "config.toml").write_bytes(tomli_w.dumps(doc).encode())
    browser = home / "browser.sh"
    opened = home / "opened-url"
    browser.write_text(f"#!/bin/sh\nprintf %s \"$1\" > {opened}\n")
    browser.chmod(0o700)
    t0 = time.monotonic()
    async with desktop(tmp_path_factory.mktemp("desktop")) as x:
        env = daemon_env("PYSTRAY_BACKEND", **x.env, OPENAI_API_KEY=OPENAI_KEY,
                         BROWSER=str(browser))
        async with serve(home, env, command="run") as d:
            t_run = time.monotonic()
            at = await x.icon_center()
            print(f"\nlocalgate run: first /health {d.launch_s * 1000:.0f} ms, icon docked "
                  f"{(time.monotonic() - t_run + d.launch_s) * 1000:.0f} ms after launch")
            await x.open_menu(at)
            items = await x.driver("dump")
            await x.screenshot(ARTIFACTS / "tray-menu.png")
            names = [i["name"] for i in items]
            for label in ("Default model", "Open dashboard", "Copy base URL", "Copy API key",
                          "Pause", "Start at login", "Quit"):
                assert label in names, names
            assert f"localgate 127.0.0.1:{d.port} — running" in names, names
            assert "Today: $0.00 of $5.00" in names, names
            radios = {i["name"]: i["checked"] for i in items if i["role"] == "check menu item"}
            assert radios["kilo-auto/balanced"] is True and radios["openai/gpt-5.2"] is False
            # a paid request while the menu is open: its spend line follows, still open
            status, _, _ = await _get(d.url, "/v1/chat/completions", method="POST",
                                      json={"model": "openai/gpt-5.2", "messages": HELLO},
                                      headers=auth())
            assert status == 200

            async def spend_shown() -> bool:
                names = [i["name"] for i in await x.driver("dump", "--wait", "0")]
                return "Today: $0.0001 of $5.00" in names
            await _until(spend_shown, "the open menu shows the new spend", within=6.0)
            where = await x.driver("point", "Default model")  # hover: the submenu opens
            code, out = await _run("xdotool", "mousemove", str(where["x"]), str(where["y"]),
                                   env=x.env)
            await asyncio.sleep(0.6)
            await x.screenshot(ARTIFACTS / "tray-menu-default-model.png")
            await x.close_menu()
            await x.invoke(at, "openai/gpt-5.2")

            async def chosen() -> bool:  # persisted, then applied: the action is done
                return (await _get(d.url, "/health"))[2]["default_model"] == "openai/gpt-5.2"
            await _until(chosen, "the daemon uses the model chosen in the tray")
            assert 'default_model = "openai/gpt-5.2"' in (home / "config.toml").read_text()
            status, headers, _ = await _get(d.url, "/v1/chat/completions", method="POST",
                                            json={"model": "localgate/default",
                                                  "messages": HELLO}, headers=auth())
            assert status == 200 and headers["x-localgate-model"] == "openai/gpt-5.2"
            assert fake.last.body["model"] == "gpt-5.2"

            await x.invoke(at, "Pause")

            async def paused() -> bool:
                return (await _get(d.url, "/health"))[2]["paused"] is True
            await _until(paused, "/health says paused after Pause")
            status, _, body = await _get(d.url, "/v1/chat/completions", method="POST",
                                         json={"model": "openai/gpt-5.2", "messages": HELLO},
                                         headers=auth())
            assert status == 503 and body["error"]["code"] == "paused"
            await x.open_menu(at)
            await x.screenshot(ARTIFACTS / "tray-menu-paused.png")
            await x.driver("invoke", "Resume")  # the same item now reads Resume

            async def resumed() -> bool:
                return (await _get(d.url, "/health"))[2]["paused"] is False
            await _until(resumed, "/health says not paused after Resume")

            await x.invoke(at, "Copy base URL")

            async def clipboard() -> str:
                code, out = await _run("xclip", "-o", "-selection", "clipboard", env=x.env)
                return out if code == 0 and out else ""
            assert await _until(clipboard, "the base URL on the clipboard") == f"{d.url}/v1"
            await x.invoke(at, "Copy API key")

            async def key_copied() -> bool:
                return await clipboard() == LOCAL_KEY
            await _until(key_copied, "the API key on the clipboard")

            await x.invoke(at, "Start at login")
            entry = Path(x.env["XDG_CONFIG_HOME"]) / "autostart" / "localgate.desktop"
            await _until(lambda: _exists(entry), "the XDG autostart entry written")
            assert f"Exec=env LOCALGATE_HOME={home} {sys.executable} -m localgate run" \
                in entry.read_text()

            await x.invoke(at, "Open dashboard")
            await _until(lambda: _exists(opened), "the browser opened")
            assert re.fullmatch(rf"{re.escape(d.url)}/localgate/login\?token=[\w-]{{20,}}",
                                opened.read_text())

            await x.invoke(at, "Quit")
            assert await d.exit_code(10.0) == 0, d.stderr()
            assert not (home / "daemon.json").exists()
            assert "Traceback" not in d.stderr(), d.stderr()
    print(f"\nX session with the tray: {time.monotonic() - t0:.1f} s")


async def _exists(p: Path) -> bool:
    return p.exists()


async def _has_text(p: Path) -> bool:
    return p.exists() and bool(await asyncio.to_thread(p.read_text))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_quits_the_tray_cleanly(home: Path, fake: FakeUpstream,
                                               tmp_path_factory: pytest.TempPathFactory,
                                               sig: signal.Signals) -> None:
    """Logout, `kill` or Ctrl-C while the GTK loop owns the main thread (pystray resets
    SIGINT there; localgate takes it back): exit 0, state file gone."""
    _require_tools()
    (home / "config.toml").write_bytes(tomli_w.dumps(provider_doc(fake.url)).encode())
    async with desktop(tmp_path_factory.mktemp("desktop")) as x, \
            serve(home, daemon_env("PYSTRAY_BACKEND", **x.env), command="run") as d:
        await x.icon_center()
        await asyncio.sleep(0.5)  # the icon's setup has run (it re-installs the handlers)
        d.proc.send_signal(sig)
        assert await d.exit_code(10.0) == 0, d.stderr()
        assert not (home / "daemon.json").exists()


async def test_without_pygobject_a_click_opens_the_dashboard(
        home: Path, fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> None:
    """pystray's xorg backend (where PyGObject is missing) has no menu: the icon still docks,
    a click opens the dashboard, and one line says how to get the menu."""
    _require_tools()
    (home / "config.toml").write_bytes(tomli_w.dumps(provider_doc(fake.url)).encode())
    browser, opened = home / "browser.sh", home / "opened-url"
    browser.write_text(f"#!/bin/sh\nprintf %s \"$1\" > {opened}\n")
    browser.chmod(0o700)
    async with desktop(tmp_path_factory.mktemp("desktop")) as x:
        env = daemon_env(**x.env, PYSTRAY_BACKEND="xorg", BROWSER=str(browser))
        async with serve(home, env, command="run") as d:
            at = await x.icon_center(log=d.stderr)
            code, out = await _run("xdotool", "mousemove", str(at[0]), str(at[1]), "click", "1",
                                   env=x.env)
            assert code == 0, out
            # (the fake browser's file may exist a moment before its content is written)
            await _until(lambda: _has_text(opened), "the browser opened by a click on the icon")
            assert opened.read_text().startswith(f"{d.url}/localgate/login?token=")
            hint = [line for line in d.stderr().splitlines() if "PyGObject" in line]
            assert len(hint) == 1 and "python3-gi" in hint[0], d.stderr()
            d.proc.send_signal(signal.SIGTERM)
            assert await d.exit_code(10.0) == 0, d.stderr()


async def test_appindicator_menu_through_a_status_notifier_host(
        home: Path, fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The path of KDE, GNOME with the AppIndicator extension, XFCE: a StatusNotifierWatcher
    is on the bus, so the tray uses pystray's appindicator backend; the host draws the menu
    from D-Bus (dbusmenu), and its items reach the daemon from there."""
    _require_tools()
    doc = merge(provider_doc(fake.url), {"limits": {"daily_usd": 5.0}})
    (home / "config.toml").write_bytes(tomli_w.dumps(doc).encode())
    async with desktop(tmp_path_factory.mktemp("desktop"), host="sni") as x:
        env = daemon_env("PYSTRAY_BACKEND", **x.env, OPENAI_API_KEY=OPENAI_KEY)
        async with serve(home, env, command="run") as d:
            at = await x.sni_icon(log=d.stderr)
            await x.open_menu(at)
            names = [i["name"] for i in await x.driver("dump")]
            await x.screenshot(ARTIFACTS / "tray-menu-statusnotifier.png")
            assert f"localgate 127.0.0.1:{d.port} — running" in names, names
            assert {"Default model", "Open dashboard", "Copy base URL", "Copy API key",
                    "Pause", "Start at login", "Quit"} <= set(names), names
            status, _, _ = await _get(d.url, "/v1/chat/completions", method="POST",
                                      json={"model": "openai/gpt-5.2", "messages": HELLO},
                                      headers=auth())
            assert status == 200

            async def spend_shown() -> bool:  # the open menu follows over D-Bus
                names = [i["name"] for i in await x.driver("dump", "--wait", "0")]
                return "Today: $0.0001 of $5.00" in names
            await _until(spend_shown, "the host's open menu shows the new spend", within=6.0)
            await x.driver("invoke", "Pause")

            async def paused() -> bool:
                return (await _get(d.url, "/health"))[2]["paused"] is True
            await _until(paused, "/health says paused after Pause")
            await x.invoke(at, "openai/gpt-5.2")

            async def chosen() -> bool:
                return (await _get(d.url, "/health"))[2]["default_model"] == "openai/gpt-5.2"
            await _until(chosen, "the daemon uses the model chosen in the host's menu")
            await x.invoke(at, "Quit")
            assert await d.exit_code(10.0) == 0, d.stderr()
            assert not (home / "daemon.json").exists()
            assert "Traceback" not in d.stderr(), d.stderr()


async def test_an_icon_made_before_the_tray_docks_when_the_tray_starts(
        home: Path, fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> None:
    """At login the tray host may start after localgate: the icon (pystray's xorg backend asks
    the tray once) must still dock when the host appears."""
    _require_tools()
    (home / "config.toml").write_bytes(tomli_w.dumps(provider_doc(fake.url)).encode())
    async with desktop(tmp_path_factory.mktemp("desktop"), host="later") as x:
        env = daemon_env(**x.env, PYSTRAY_BACKEND="xorg")
        async with serve(home, env, command="run") as d:
            await asyncio.sleep(1.0)  # the icon exists, with no tray to dock in
            await x.start_trayer()
            await x.icon_center(log=d.stderr)
            d.proc.send_signal(signal.SIGTERM)
            assert await d.exit_code(10.0) == 0, d.stderr()
