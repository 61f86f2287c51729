"""Which tray runs where (backend choice for each kind of desktop), the clipboard tools (the
key goes through stdin, never argv), the system PyGObject loader, and `localgate run` without
a display or beside a running daemon (real subprocesses).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from localgate.desktop import backend, clipboard
from localgate.desktop.backend import Choice, Probes
from tests.conftest import LOCAL_KEY
from tests.fakes import FakeUpstream
from tests.test_daemon import acli, daemon_env, serve, write_config


def probes(gtk: bool = True, appindicator: bool = True, sni: bool = False,
           xembed: bool = False) -> Probes:
    return Probes(lambda: gtk, lambda: appindicator, lambda: sni, lambda display: xembed)


@pytest.mark.parametrize(("env", "p", "want"), [
    ({}, probes(), None),                                             # no display at all
    ({"WAYLAND_DISPLAY": "wayland-0"}, probes(sni=False), None),      # GNOME without extension
    ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, probes(sni=False), None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, probes(sni=True), "appindicator"),  # KDE, GNOME+ext
    ({"DISPLAY": ":0"}, probes(sni=True), "appindicator"),
    ({"DISPLAY": ":0"}, probes(sni=True, appindicator=False, xembed=True), "gtk"),  # KDE
    ({"DISPLAY": ":0"}, probes(sni=True, appindicator=False), None),  # GNOME, no typelib
    ({"DISPLAY": ":0"}, probes(xembed=True), "gtk"),                  # XFCE, MATE, trayer
    ({"DISPLAY": ":0"}, probes(gtk=False, appindicator=False, xembed=True), "xorg"),
    ({"DISPLAY": ":0", "PYSTRAY_BACKEND": "xorg"}, probes(sni=True), "xorg"),
], ids=["no-display", "wayland-no-host", "xwayland-no-host", "wayland-sni", "x11-sni",
        "x11-sni-xembed-no-appindicator", "x11-sni-only-no-appindicator", "x11-xembed",
        "x11-no-gi", "forced"])
def test_backend_choice(env: dict[str, str], p: Probes, want: str | None) -> None:
    choice = backend.choose(env, "linux", p, wait_s=0)
    assert choice.backend == want
    if want is None:
        assert choice.note and "headless" in choice.note  # one line says why
    if want == "xorg":
        assert choice.note == backend.MENU_HINT and "python3-gi" in choice.note


def test_backend_choice_elsewhere() -> None:
    assert backend.choose({}, "darwin", probes()) == Choice("darwin")
    assert backend.choose({}, "win32", probes()) == Choice("win32")


def test_x11_without_a_tray_yet_says_so_but_keeps_the_icon() -> None:
    choice = backend.choose({"DISPLAY": ":0"}, "linux", probes(), wait_s=0)
    assert choice.backend == "gtk"
    assert "no system tray is running" in choice.note


def test_system_pygobject_loads_when_its_abi_matches() -> None:
    if not Path("/usr/lib/python3/dist-packages/gi").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must have python3-gi (.ci/run installs it)")
        pytest.skip("needs Debian's python3-gi")
    code = ("import sys; from localgate.desktop import backend; ok = backend.load_gi(); "
            "import gi; print(ok, gi.__file__); "
            "gi.require_version('Gtk', '3.0'); from gi.repository import Gtk; print('gtk')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=daemon_env("PYTHONPATH"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "/usr/lib/python3/dist-packages/gi/__init__.py",
                                  "gtk"]


def _fake_tool(bindir: Path, name: str, sink: Path) -> None:
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" > {sink}.argv\n/bin/cat > {sink}\n')
    tool.chmod(0o755)


def test_clipboard_tool_gets_the_text_on_stdin(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sink = tmp_path / "clip"
    _fake_tool(tmp_path / "bin", "xsel", sink)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("DISPLAY", ":5")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    clipboard.copy(LOCAL_KEY)
    assert sink.read_text() == LOCAL_KEY
    assert LOCAL_KEY not in Path(f"{sink}.argv").read_text()  # never in argv


def test_clipboard_tools_per_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    assert clipboard.tools("darwin", {}) == [["pbcopy"]]
    assert clipboard.tools("win32", {}) == [["clip"]]
    assert [t[0] for t in clipboard.tools("linux", {"WAYLAND_DISPLAY": "w", "DISPLAY": ":0"})] \
        == ["wl-copy", "xclip", "xsel"]
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(clipboard.ClipboardUnavailable, match="install a display"):
        clipboard.copy("x")


async def test_run_without_a_display_is_headless_in_one_line(home: Path,
                                                            fake: FakeUpstream) -> None:
    write_config(home, fake.url)
    env = daemon_env("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND")
    async with serve(home, env, command="run") as d:
        err = d.stderr()
        assert err.splitlines()[0] == ("localgate: no display: running headless (the tray "
                                       "needs a desktop session)"), err
        assert f"listening on http://127.0.0.1:{d.port}/v1" in err


async def test_a_second_run_says_where_the_first_is(home: Path, fake: FakeUpstream) -> None:
    write_config(home, fake.url)
    env = daemon_env("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND")
    async with serve(home, env) as first:
        code, out, err = await acli("run", "--port", "0", env=env)
        assert code == 1, err
        assert f"already running at http://127.0.0.1:{first.port}/v1" in err, err
        # with a display and a tray backend it is the same: the lock comes first
        code, out, err = await acli("run", "--port", "0",
                                    env=daemon_env(DISPLAY=":0", PYSTRAY_BACKEND="dummy"))
        assert code == 1 and f"already running at http://127.0.0.1:{first.port}/v1" in err, err


async def test_run_with_an_unreachable_display_is_headless(home: Path,
                                                          fake: FakeUpstream) -> None:
    """A stale DISPLAY (no X server there): one line, then serving; never a crash."""
    write_config(home, fake.url)
    env = daemon_env("WAYLAND_DISPLAY", "PYSTRAY_BACKEND", DISPLAY=":987")
    async with serve(home, env, command="run") as d:
        async def said() -> list[str]:
            return [line for line in d.stderr().splitlines()
                    if line.startswith("localgate: no tray (")]
        for _ in range(100):  # the server answers first; the tray's verdict follows
            if await said():
                break
            await asyncio.sleep(0.05)
        lines = await said()
        assert len(lines) == 1 and lines[0].endswith("); running headless"), d.stderr()
        assert "Traceback" not in d.stderr()
        d.proc.send_signal(signal.SIGTERM)
        assert await d.exit_code(5.0) == 0
    assert not (home / "daemon.json").exists()
