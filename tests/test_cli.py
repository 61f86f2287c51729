"""The `localgate` command driven as a user drives it: a subprocess (`python -m localgate ...`).

These commands need no daemon and no upstream, so plain subprocess.run is fine here; the tests
that need a running daemon live in test_daemon.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

import localgate
from tests.conftest import LOCAL_KEY, keychain_entries

SONNET = "anthropic/claude-sonnet-4.6"


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localgate", *args], capture_output=True,
                          text=True, env=env if env is not None else os.environ.copy(),
                          timeout=timeout, stdin=subprocess.DEVNULL)


def env_without(*names: str, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    for n in names:
        env.pop(n, None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(home: Path, doc: dict[str, Any]) -> Path:
    path = home / "config.toml"
    path.write_bytes(tomli_w.dumps(doc).encode())
    return path


def read_config(home: Path) -> dict[str, Any]:
    with (home / "config.toml").open("rb") as f:
        return tomllib.load(f)


# ---- help and version --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["run"], ["serve"], ["status"], ["models"], ["default"],
                                  ["token"], ["token", "show"], ["config"], ["config", "path"],
                                  ["config", "show"], ["keys"], ["keys", "set"], ["keys", "list"],
                                  ["keys", "remove"]], ids=lambda a: " ".join(a) or "localgate")
def test_help(args: list[str]) -> None:
    r = cli(*args, "--help")
    assert r.returncode == 0, r.stderr
    # its own usage line: the top-level help printed instead would start "usage: localgate"
    assert r.stdout.startswith(" ".join(["usage: localgate", *args, ""])), r.stdout[:200]
    assert r.stderr == ""


def test_top_level_help_lists_the_commands() -> None:
    out = cli("--help").stdout
    # each command on its own line, its help text beside it or (a long name) on the next line
    # ("run" alone is in many other lines)
    listed = re.findall(r"^ {4}(\w+)(?: {2,}\S|\n {14}\S)", out, re.MULTILINE)
    assert listed == ["run", "serve", "status", "pause", "resume", "dashboard", "autostart",
                      "models", "default", "token", "keys", "log", "spend", "limits", "config",
                      "setup"], out


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"localgate {localgate.__version__}"


def test_unknown_command_fails() -> None:
    r = cli("frobnicate")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr


# ---- config ------------------------------------------------------------------------------------

def test_config_path(home: Path) -> None:
    r = cli("config", "path")
    assert r.returncode == 0
    assert r.stdout.strip() == str(home / "config.toml")
    r = cli("config", "path", "--format", "json")
    assert json.loads(r.stdout) == {"path": str(home / "config.toml")}


def test_config_show_has_no_secrets(home: Path) -> None:
    write_config(home, {"routing": {"default_model": SONNET}})
    env = env_without(OPENAI_API_KEY="sk-secret-xyz", KILO_API_KEY="kilo-secret-abc")
    r = cli("config", "show", env=env)
    assert r.returncode == 0, r.stderr
    for secret in ("sk-secret-xyz", "kilo-secret-abc", LOCAL_KEY):
        leaked = secret in r.stdout or secret in r.stderr
        assert not leaked, "a secret was printed by `config show`"
    doc = tomllib.loads(r.stdout)
    assert doc["routing"]["default_model"] == SONNET
    assert doc["server"]["port"] == 8642
    assert doc["providers"]["openai"]["key_env"] == "OPENAI_API_KEY"  # the name, not the key

    r = cli("config", "show", "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    assert "sk-secret-xyz" not in r.stdout and LOCAL_KEY not in r.stdout
    view = json.loads(r.stdout)
    assert view["routing"]["default_model"] == SONNET
    assert view["upstream"]["first_byte_timeout_s"] == 120


@pytest.mark.parametrize(("doc", "key", "expects"), [
    ({"server": {"port": "abc"}}, "server.port", "port number"),
    ({"routing": {"gateway": "nope"}}, "routing.gateway", "expected one of"),
    ({"upstream": {"first_byte_timeout_s": -1}}, "upstream.first_byte_timeout_s",
     "greater than 0"),
    ({"routing": {"fallback_to_gateway": "yes"}}, "routing.fallback_to_gateway", "true or false"),
    ({"providers": {"mylab": {"api": "openai"}}}, "providers.mylab.base_url", "base_url"),
], ids=["port", "gateway", "timeout", "bool", "new-provider"])
def test_bad_config_value_stops_serve(home: Path, doc: dict[str, Any], key: str,
                                      expects: str) -> None:
    write_config(home, doc)
    r = cli("serve", "--port", str(free_port()), timeout=8)
    assert r.returncode != 0
    assert key in r.stderr, r.stderr
    assert expects in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert not (home / "daemon.json").exists()


def test_invalid_toml_stops_serve(home: Path) -> None:
    (home / "config.toml").write_text("[server\nport = 1\n")
    r = cli("serve", "--port", str(free_port()), timeout=8)
    assert r.returncode != 0
    assert "not valid TOML" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_unknown_keys_warned_by_config_show(home: Path) -> None:
    write_config(home, {"future": {"x": 1}, "server": {"shiny": True}})
    r = cli("config", "show")
    assert r.returncode == 0, r.stderr
    assert "future" in r.stderr and "server.shiny" in r.stderr, r.stderr


def test_unknown_keys_survive_default(home: Path) -> None:
    (home / "config.toml").write_text(
        "# my hand edits\n"
        "[server]\n"
        "port = 9000\n"
        "shiny = true  # a key from a newer version\n"
        "\n"
        "[future]\n"
        'x = 1\n'
        'nested = { a = "b" }\n'
        "\n"
        "[providers.mylab]\n"
        'base_url = "http://10.0.0.5:8000/v1"\n'
        "free = true\n"
        'someday = "kept"\n')
    r = cli("default", "anthropic/claude-opus-4.6")
    assert r.returncode == 0, r.stderr
    doc = read_config(home)
    assert doc["routing"]["default_model"] == "anthropic/claude-opus-4.6"
    assert doc["server"] == {"port": 9000, "shiny": True}
    assert doc["future"] == {"x": 1, "nested": {"a": "b"}}
    assert doc["providers"]["mylab"] == {"base_url": "http://10.0.0.5:8000/v1", "free": True,
                                         "someday": "kept"}


# ---- models ------------------------------------------------------------------------------------

def _models_json(*args: str) -> list[dict[str, Any]]:
    r = cli("models", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert isinstance(rows, list)
    return rows


def test_models_table_is_aligned() -> None:
    r = cli("models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head, rule, rows = lines[0], lines[1], lines[2:]
    assert head.split()[0] == "model" and "context" in head and "$/1M in" in head
    assert set(rule) <= {"-", " "}
    # column spans from the rule line: runs of dashes separated by two spaces
    spans, pos = [], 0
    for dashes in rule.split("  "):
        spans.append((pos, pos + len(dashes)))
        pos += len(dashes) + 2
    assert len(spans) == 6
    assert len(rows) > 50
    for line in [head, *rows]:
        assert len(line) <= len(rule), line
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert line[end:start].strip() == "", f"misaligned: {line!r}"
    sonnet = next(line for line in rows if line.split()[0] == SONNET)
    # numbers are right-aligned: the context cell ends at its column's end
    ctx_end = spans[1][1]
    assert sonnet[ctx_end - 1].isdigit(), sonnet
    assert sonnet[spans[2][0]:spans[2][1]].strip() == "3"


def test_models_provider_filter() -> None:
    rows = _models_json("--provider", "anthropic")
    assert rows and all(r["id"].startswith("anthropic/") for r in rows)
    assert SONNET in {r["id"] for r in rows}
    table = cli("models", "--provider", "anthropic").stdout.splitlines()[2:]
    assert table and all(line.startswith("anthropic/") for line in table)


def test_models_free_filter() -> None:
    rows = _models_json("--free")
    assert rows and all(r["free"] is True for r in rows)
    assert SONNET not in {r["id"] for r in rows}
    assert all(r["prompt_per_m"] in (0, None) for r in rows)


def test_models_json_shape() -> None:
    rows = _models_json()
    keys = {"id", "provider", "free", "context_length", "prompt_per_m", "completion_per_m",
            "cache_read_per_m", "cache_write_per_m"}
    assert all(set(r) == keys for r in rows)
    sonnet = next(r for r in rows if r["id"] == SONNET)
    assert sonnet["provider"] == "anthropic"
    assert sonnet["free"] is False
    assert sonnet["prompt_per_m"] == 3.0
    assert sonnet["completion_per_m"] == 15.0
    assert sonnet["context_length"] and sonnet["context_length"] >= 200_000


def test_models_csv() -> None:
    r = cli("models", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows and set(rows[0]) == {"id", "provider", "free", "context_length", "prompt_per_m",
                                     "completion_per_m", "cache_read_per_m",
                                     "cache_write_per_m"}
    sonnet = next(row for row in rows if row["id"] == SONNET)
    assert float(sonnet["prompt_per_m"]) == 3.0
    assert len(rows) == len(_models_json())


# ---- default -----------------------------------------------------------------------------------

def test_default_shows_builtin_default(home: Path) -> None:
    r = cli("default")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "kilo-auto/balanced"
    r = cli("default", "--format", "json")
    assert json.loads(r.stdout) == {"default_model": "kilo-auto/balanced"}
    assert not (home / "config.toml").exists()  # showing never writes


def test_default_set_persists(home: Path) -> None:
    r = cli("default", "anthropic/claude-opus-4.6")
    assert r.returncode == 0, r.stderr
    assert "anthropic/claude-opus-4.6" in r.stdout
    assert read_config(home)["routing"]["default_model"] == "anthropic/claude-opus-4.6"
    assert cli("default").stdout.strip() == "anthropic/claude-opus-4.6"
    assert cli("config", "show", "--format", "json").stdout.count("claude-opus-4.6") >= 1


def test_default_unknown_provider_refused(home: Path) -> None:
    path = write_config(home, {"routing": {"default_model": SONNET}, "future": {"x": 1}})
    before = path.read_bytes()
    r = cli("default", "nope/x")
    assert r.returncode != 0
    assert "nope" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert path.read_bytes() == before
    assert cli("default").stdout.strip() == SONNET


def test_default_unknown_provider_creates_no_file(home: Path) -> None:
    r = cli("default", "nope/x")
    assert r.returncode != 0
    assert not (home / "config.toml").exists()


# ---- token -------------------------------------------------------------------------------------

def test_token_show_prints_env_key(home: Path) -> None:
    r = cli("token", "show")
    assert r.returncode == 0, r.stderr
    same = r.stdout.strip() == LOCAL_KEY
    assert same, "token show did not print LOCALGATE_API_KEY"
    assert not (home / "local-key").exists()  # the env key is not written anywhere
    r = cli("token", "show", "--format", "json")
    ok = json.loads(r.stdout) == {"name": "default", "key": LOCAL_KEY}
    assert ok, "token show --format json did not carry the env key"


def test_token_show_generates_and_keeps_a_key(home: Path) -> None:
    env = env_without("LOCALGATE_API_KEY")
    r1 = cli("token", "show", env=env)
    assert r1.returncode == 0, r1.stderr
    key = r1.stdout.strip()
    assert len(key) >= 32 and key.isprintable() and " " not in key
    stored = keychain_entries().get("local-api-key") == key
    assert stored, "the key printed is not the key kept in the keychain"
    assert not any(key in p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())
    r2 = cli("token", "show", env=env)
    same = r2.stdout.strip() == key
    assert same, "a second `token show` printed a different key"
    # the env key, when set, takes precedence over the stored one
    env_first = cli("token", "show").stdout.strip() == LOCAL_KEY
    assert env_first, "LOCALGATE_API_KEY did not take precedence"


# ---- status without a daemon -------------------------------------------------------------------

def test_status_not_running(home: Path) -> None:
    r = cli("status")
    assert r.returncode == 3
    assert "not running" in r.stdout
    assert "kilo-auto/balanced" in r.stdout
    r = cli("status", "--format", "json")
    assert r.returncode == 3
    info = json.loads(r.stdout)
    assert info["running"] is False
    assert info["default_model"] == "kilo-auto/balanced"


def test_status_ignores_stale_state_file(home: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (home / "daemon.json").write_text(json.dumps({"pid": int(dead.stdout), "host": "127.0.0.1",
                                                  "port": free_port(), "version": "0"}))
    r = cli("status", "--format", "json")
    assert r.returncode == 3
    assert json.loads(r.stdout)["running"] is False


# ---- edge cases that once ended in a traceback or a broken config ------------------------------

@pytest.mark.parametrize("model", ["localgate/default", "", "   "], ids=["self", "empty", "blank"])
def test_default_refuses_a_default_that_cannot_resolve(home: Path, model: str) -> None:
    path = write_config(home, {"routing": {"default_model": SONNET}})
    before = path.read_bytes()
    r = cli("default", model)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("localgate: "), r.stderr
    assert path.read_bytes() == before
    assert cli("default").stdout.strip() == SONNET


def test_default_accepts_auto_models(home: Path) -> None:
    for model in ("kilo-auto/free", "kilo-auto/frontier", "kilo/auto"):
        r = cli("default", model)
        assert r.returncode == 0, r.stderr
        assert read_config(home)["routing"]["default_model"] == model


@pytest.mark.parametrize("args", [["--port", "70000"], ["--port", "-1"], ["--port", "x"]])
def test_serve_rejects_bad_port_argument(args: list[str]) -> None:
    r = cli("serve", *args, timeout=8)
    assert r.returncode == 2
    assert "--port" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("host", ["192.0.2.77"])  # TEST-NET: not ours, and no DNS lookup
def test_serve_on_an_address_it_cannot_bind(home: Path, host: str) -> None:
    r = cli("serve", "--host", host, "--port", str(free_port()), timeout=15)
    assert r.returncode == 1
    assert f"cannot listen on {host}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert not (home / "daemon.json").exists()


def test_every_command_is_documented_in_the_readme() -> None:
    from localgate.cli import parser
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    sub = next(a for a in parser()._actions if a.dest == "cmd")
    commands = sorted(sub.choices)
    assert len(commands) >= 16
    missing = [c for c in commands if f"`localgate {c}" not in readme]
    assert missing == [], missing
