"""Start at login: write, find and remove the per-user entry that starts `localgate run`.

Linux: an XDG autostart entry in a desktop session (the tray needs that session's display and
bus), else a systemd user unit; macOS: a launchd agent; Windows: a Startup-folder script. Each
is rendered from a template shipped as package data (localgate/desktop/templates/, copied in
packaging/autostart/) and starts the interpreter and package that ran the command. Blocking
(files): never call on the server loop. Stdlib only.
"""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

KINDS = ("xdg", "systemd", "launchd", "startup-folder")
DESCRIPTIONS = {"xdg": "XDG autostart entry", "systemd": "systemd user service",
                "launchd": "launchd agent", "startup-folder": "Startup-folder entry"}
TEMPLATES = {"xdg": "localgate-autostart.desktop", "systemd": "localgate.service",
             "launchd": "dev.localgate.daemon.plist", "startup-folder": "localgate-startup.cmd"}
CARRIED_ENV = ("LOCALGATE_HOME",)  # where the daemon keeps its files; never a key


class AutostartError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    kind: str
    path: str
    enabled: bool
    current: bool        # it starts this interpreter (False: an older or other install)
    command: list[str]

    def describe(self) -> str:
        return f"{DESCRIPTIONS[self.kind]} {self.path}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": DESCRIPTIONS[self.kind]}


def command(executable: str | None = None, platform: str | None = None) -> list[str]:
    """What the entry runs: this interpreter and package (pythonw on Windows: no console)."""
    exe = executable or sys.executable
    if (platform or sys.platform) == "win32":
        w = Path(exe).with_name("pythonw.exe")
        if w.exists():
            exe = str(w)
    return [exe, "-m", "localgate", "run"]


def kinds_for(platform: str | None = None) -> tuple[str, ...]:
    platform = platform or sys.platform
    if platform == "darwin":
        return ("launchd",)
    if platform == "win32":
        return ("startup-folder",)
    return ("xdg", "systemd")


def default_kind(platform: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The entry that fits this session: on Linux XDG autostart in a desktop session (it
    starts inside the session, with its display and bus), a systemd user unit otherwise."""
    env = os.environ if env is None else env
    kinds = kinds_for(platform)
    if kinds[0] != "xdg":
        return kinds[0]
    desktop = env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("XDG_CURRENT_DESKTOP")
    return "xdg" if desktop else "systemd"


def entry_path(kind: str, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    if kind == "xdg":
        return config / "autostart" / "localgate.desktop"
    if kind == "systemd":
        return config / "systemd" / "user" / "localgate.service"
    if kind == "launchd":
        return home / "Library" / "LaunchAgents" / "dev.localgate.daemon.plist"
    if kind == "startup-folder":
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        return (appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
                / "localgate.cmd")
    raise AutostartError(f"unknown autostart kind {kind!r}; expected one of {', '.join(KINDS)}")


def _wants_link(unit: Path) -> Path:
    return unit.parent / "default.target.wants" / unit.name


def template(kind: str) -> str:
    ref = resources.files("localgate.desktop").joinpath("templates", TEMPLATES[kind])
    return ref.read_bytes().decode("utf-8")  # as written: the .cmd keeps its CRLF


# ---- rendering: each format's own quoting ---------------------------------------------------

def _xdg_arg(arg: str) -> str:
    # Desktop Entry spec: quote args with reserved characters; inside quotes escape " ` $ \,
    # then the value's own escaping doubles every backslash; % is always doubled
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg.replace("%", "%%")
    inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + inner.replace("\\", "\\\\").replace("%", "%%") + '"'


def _systemd_arg(arg: str) -> str:
    quoted = arg.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + quoted.replace("%", "%%").replace("$", "$$") + '"'


def _cmd_arg(arg: str) -> str:
    return '"' + arg.replace("%", "%%") + '"'


def render(kind: str, argv: list[str], env: Mapping[str, str], *, icon: str = "",
           log: str = "") -> str:
    """The entry's text for `argv`, with `env` (name -> value) set for the daemon."""
    t = string.Template(template(kind))
    if kind == "xdg":
        pre = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
        return t.substitute(exec=" ".join(_xdg_arg(a) for a in pre + argv), icon=icon)
    if kind == "systemd":
        lines = "\n".join(f"Environment={_systemd_arg(f'{k}={v}')}" for k, v in env.items())
        return t.substitute(exec=" ".join(_systemd_arg(a) for a in argv), environment=lines)
    if kind == "launchd":
        args = "\n".join(f"\t\t<string>{xml_escape(a)}</string>" for a in argv)
        envs = ""
        if env:
            pairs = "".join(f"\t\t<key>{xml_escape(k)}</key>\n\t\t<string>{xml_escape(v)}"
                            "</string>\n" for k, v in env.items())
            envs = f"\t<key>EnvironmentVariables</key>\n\t<dict>\n{pairs}\t</dict>"
        return t.substitute(arguments=args, environment=envs, log=xml_escape(log))
    lines = "\r\n".join(f'set "{k}={v.replace("%", "%%")}"' for k, v in env.items())
    return t.substitute(exec=" ".join(_cmd_arg(a) for a in argv), environment=lines)


# ---- the commands ------------------------------------------------------------------------

def _carried_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: env[k] for k in CARRIED_ENV if env.get(k)}


def _icon_path() -> str:
    return str(resources.files("localgate.desktop").joinpath("icons", "localgate-256.png"))


def _expected(kind: str, env: Mapping[str, str], platform: str | None) -> str:
    home = Path(env.get("HOME") or Path.home())
    return render(kind, command(platform=platform), _carried_env(env), icon=_icon_path(),
                  log=str(home / "Library" / "Logs" / "localgate.log"))


def enable(kind: str | None = None, env: Mapping[str, str] | None = None,
           platform: str | None = None) -> Entry:
    """Write the entry (replacing an older one) and return it."""
    env = os.environ if env is None else env
    kind = kind or default_kind(platform, env)
    if kind not in kinds_for(platform):
        raise AutostartError(f"{kind!r} is not an autostart kind on this system; expected "
                             f"{' or '.join(kinds_for(platform))}")
    path = entry_path(kind, env)
    text = _expected(kind, env, platform)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)
    if kind == "systemd":  # what `systemctl --user enable` does, without needing its bus
        link = _wants_link(path)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path)
    for other in kinds_for(platform):  # one entry only: two would start two daemons
        if other != kind:
            _remove(other, env)
    return status(env, platform)


def _remove(kind: str, env: Mapping[str, str]) -> list[Path]:
    path = entry_path(kind, env)
    gone = []
    for p in ([_wants_link(path)] if kind == "systemd" else []) + [path]:
        if p.is_symlink() or p.exists():
            p.unlink()
            gone.append(p)
    return gone


def disable(env: Mapping[str, str] | None = None, platform: str | None = None) -> list[Path]:
    """Remove every entry of this platform; returns what was removed."""
    env = os.environ if env is None else env
    return [p for kind in kinds_for(platform) for p in _remove(kind, env)]


def status(env: Mapping[str, str] | None = None, platform: str | None = None) -> Entry:
    """The installed entry, else the one `enable` would write (enabled=False)."""
    env = os.environ if env is None else env
    for kind in kinds_for(platform):
        path = entry_path(kind, env)
        if path.is_file():
            with path.open(encoding="utf-8", errors="replace", newline="") as f:
                text = f.read()
            enabled = kind != "systemd" or _wants_link(path).exists()
            current = text == _expected(kind, env, platform)
            return Entry(kind, str(path), enabled, current, command(platform=platform))
    kind = default_kind(platform, env)
    return Entry(kind, str(entry_path(kind, env)), False, False, command(platform=platform))
