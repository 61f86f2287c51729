"""Start at login against a temporary HOME and XDG dirs (never the real ones): each platform's
entry as written, the CLI (`localgate autostart enable|disable|status`), and the templates
that packaging/ and the installed package both carry.
"""

from __future__ import annotations

import configparser
import json
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from localgate.desktop import autostart

ROOT = Path(__file__).resolve().parent.parent
WEIRD = "/opt/my tools/py$thon%1/bin/python3"   # spaces, $ and % in the interpreter's path


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"HOME": str(tmp_path / "user"), "XDG_CONFIG_HOME": str(tmp_path / "user/.cfg"),
           "APPDATA": str(tmp_path / "user/AppData/Roaming"), "LOCALGATE_HOME": "/data/lg home"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    return env


def test_kind_fits_the_session() -> None:
    assert autostart.default_kind("linux", {"DISPLAY": ":0"}) == "xdg"
    assert autostart.default_kind("linux", {"WAYLAND_DISPLAY": "wayland-0"}) == "xdg"
    assert autostart.default_kind("linux", {}) == "systemd"  # a server, over ssh
    assert autostart.default_kind("darwin", {}) == "launchd"
    assert autostart.default_kind("win32", {}) == "startup-folder"


def test_xdg_entry(user: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    entry = autostart.enable()
    path = Path(user["XDG_CONFIG_HOME"]) / "autostart" / "localgate.desktop"
    assert (entry.kind, entry.path, entry.enabled, entry.current) == ("xdg", str(path), True,
                                                                      True)
    ini = configparser.ConfigParser(interpolation=None)
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini.read(path)
    d = ini["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "localgate"
    assert d["Exec"] == f'env "LOCALGATE_HOME=/data/lg home" {sys.executable} -m localgate run'
    assert Path(d["Icon"]).is_file() and d["Icon"].endswith("localgate-256.png")
    assert autostart.disable() == [path]
    assert autostart.status().enabled is False


def test_xdg_exec_quoting() -> None:
    text = autostart.render("xdg", [WEIRD, "-m", "localgate", "run"], {})
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    # Desktop Entry spec: quoted, with $ escaped in the arg and the backslash doubled by the
    # string escaping; % doubled as a field-code escape
    assert exec_line == 'Exec="/opt/my tools/py\\\\$thon%%1/bin/python3" -m localgate run'


def test_systemd_unit(user: dict[str, str]) -> None:
    entry = autostart.enable("systemd", platform="linux")
    unit = Path(user["XDG_CONFIG_HOME"]) / "systemd" / "user" / "localgate.service"
    link = unit.parent / "default.target.wants" / "localgate.service"
    assert entry.path == str(unit) and entry.enabled
    assert link.is_symlink() and link.resolve() == unit  # what `systemctl --user enable` makes
    text = unit.read_text()
    assert f'ExecStart="{sys.executable}" "-m" "localgate" "run"' in text
    assert 'Environment="LOCALGATE_HOME=/data/lg home"' in text
    assert "WantedBy=default.target" in text
    weird = autostart.render("systemd", [WEIRD, "run"], {})
    assert 'ExecStart="/opt/my tools/py$$thon%%1/bin/python3" "run"' in weird
    assert autostart.disable(platform="linux") == [link, unit]


def test_one_entry_at_a_time(user: dict[str, str]) -> None:
    autostart.enable("systemd", platform="linux")
    autostart.enable("xdg", platform="linux")  # two entries would start two daemons
    assert not (Path(user["XDG_CONFIG_HOME"]) / "systemd/user/localgate.service").exists()
    assert autostart.status(platform="linux").kind == "xdg"


def test_launchd_agent(user: dict[str, str]) -> None:
    entry = autostart.enable(platform="darwin")
    path = Path(user["HOME"]) / "Library/LaunchAgents/dev.localgate.daemon.plist"
    assert (entry.kind, entry.path, entry.enabled) == ("launchd", str(path), True)
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "dev.localgate.daemon"
    assert plist["ProgramArguments"] == [sys.executable, "-m", "localgate", "run"]
    assert plist["RunAtLoad"] is True
    assert plist["EnvironmentVariables"] == {"LOCALGATE_HOME": "/data/lg home"}
    assert plist["StandardErrorPath"] == str(Path(user["HOME"]) / "Library/Logs/localgate.log")
    weird = plistlib.loads(autostart.render("launchd", ["/a&b<c>/python", "run"], {},
                                            log="/l").encode())
    assert weird["ProgramArguments"] == ["/a&b<c>/python", "run"] and \
        "EnvironmentVariables" not in weird


def test_windows_startup_entry(user: dict[str, str]) -> None:
    entry = autostart.enable(platform="win32")
    path = (Path(user["APPDATA"]) / "Microsoft/Windows/Start Menu/Programs/Startup"
            / "localgate.cmd")
    assert (entry.kind, entry.path, entry.enabled) == ("startup-folder", str(path), True)
    lines = path.read_bytes().decode().split("\r\n")  # a batch file: CRLF throughout
    assert lines[0] == "@echo off"
    assert 'set "LOCALGATE_HOME=/data/lg home"' in lines
    assert f'start "" "{sys.executable}" "-m" "localgate" "run"' in lines
    assert '"/opt/my tools/py$thon%%1/bin/python3"' in autostart.render("startup-folder",
                                                                       [WEIRD], {})


def test_status_notices_an_entry_for_another_install(user: dict[str, str]) -> None:
    autostart.enable("xdg", platform="linux")
    path = Path(autostart.status(platform="linux").path)
    path.write_text(path.read_text().replace(sys.executable, "/old/venv/bin/python"))
    st = autostart.status(platform="linux")
    assert st.enabled and not st.current


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os
    return subprocess.run([sys.executable, "-m", "localgate", "autostart", *args],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, **env})


def test_cli_enable_status_disable(user: dict[str, str]) -> None:
    env = {**user, "DISPLAY": ":0"}
    st = json.loads(_cli("status", "--format", "json", env=env).stdout)
    assert (st["enabled"], st["kind"]) == (False, "xdg")
    out = _cli("enable", env=env)
    assert out.returncode == 0, out.stderr
    path = Path(user["XDG_CONFIG_HOME"]) / "autostart" / "localgate.desktop"
    assert out.stdout.splitlines()[0] == f"start at login enabled: XDG autostart entry {path}"
    st = json.loads(_cli("status", "--format", "json", env=env).stdout)
    assert st == {"kind": "xdg", "path": str(path), "enabled": True, "current": True,
                  "command": [sys.executable, "-m", "localgate", "run"],
                  "description": "XDG autostart entry"}
    table = _cli("status", env=env).stdout
    assert table.splitlines()[:2] == ["start at login: enabled",
                                      f"  entry: XDG autostart entry {path}"]
    out = _cli("disable", env=env)
    assert out.stdout.strip() == f"start at login disabled: removed {path}"
    assert _cli("disable", env=env).stdout.strip() == \
        "start at login disabled (it was not enabled)"
    bad = _cli("enable", "--kind", "launchd", env=env)
    assert bad.returncode == 1 and "not an autostart kind on this system" in bad.stderr


@pytest.mark.parametrize("kind", autostart.KINDS)
def test_packaging_carries_the_same_templates(kind: str) -> None:
    shipped = autostart.template(kind).encode()
    assert (ROOT / "packaging" / "autostart" / autostart.TEMPLATES[kind]).read_bytes() == shipped
