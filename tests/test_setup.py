"""`localgate setup TOOL` driven as a user drives it (the CLI as a subprocess), against a
temporary HOME holding each tool's realistic existing config: the written file is parsed back
with the tool's own format, the user's settings and comments survive, the original is backed up
once, `--undo` restores it byte for byte, `--print` changes nothing, and the key each tool gets
works against a running daemon and is logged under the tool's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from ruamel.yaml import YAML

from tests.conftest import merge, provider_doc
from tests.fakes import FakeUpstream
from tests.test_daemon import acli, daemon_env, serve

PORT = 9123  # config.toml's [server] port in these tests: the URL must come from there
ROOT = f"http://127.0.0.1:{PORT}"


# ---- the tools' formats, read independently of localgate's own editors ---------------------------

_JSONC_TOKENS = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.S)


def jsonc_loads(text: str) -> Any:
    """JSONC as OpenCode and the Kilo CLI read it: comments and trailing commas allowed."""
    bare = _JSONC_TOKENS.sub(lambda m: m.group(1) or "", text)
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", bare))


def yaml_loads(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@dataclass(frozen=True)
class Case:
    tool: str
    client: str
    rel: str                                   # the file, relative to HOME
    original: str                              # the user's existing file
    load: Callable[[str], Any]                 # the tool's own format
    check: Callable[[Any, str], str]           # asserts our entries and the user's; returns key
    comments: tuple[str, ...] = ()             # comment lines that must survive
    new_rel: str = ""                          # the file setup creates when there is none

    @property
    def created(self) -> str:
        return self.new_rel or self.rel


def _claude(doc: Any, root: str) -> str:
    env = doc["env"]
    assert env["ANTHROPIC_BASE_URL"] == root
    assert env["BASH_DEFAULT_TIMEOUT_MS"] == "60000"
    assert doc["model"] == "opus"
    assert doc["permissions"] == {"allow": ["Bash(npm run test:*)"], "deny": ["Read(./.env)"]}
    return str(env["ANTHROPIC_AUTH_TOKEN"])


def _codex(doc: Any, root: str) -> str:
    mine = doc["model_providers"]["localgate"]
    assert {k: v for k, v in mine.items() if k != "experimental_bearer_token"} == {
        "name": "localgate", "base_url": f"{root}/v1", "wire_api": "responses"}
    assert doc["model_provider"] == "localgate"
    assert doc["model"] == "localgate/default"
    assert doc["approval_policy"] == "on-request"
    assert doc["mcp_servers"]["context7"]["args"] == ["-y", "@upstash/context7-mcp"]
    assert doc["model_providers"]["azure"]["query_params"] == {"api-version": "2025-04-01-preview"}
    return str(mine["experimental_bearer_token"])


def _continue(doc: Any, root: str) -> str:
    models = doc["models"]
    assert models[0] == {"name": "GPT-4o", "provider": "openai", "model": "gpt-4o",
                         "apiKey": "sk-users-own", "roles": ["chat"]}
    mine = [m for m in models if m["name"] == "localgate"]
    assert len(mine) == 1, models
    assert {k: v for k, v in mine[0].items() if k != "apiKey"} == {
        "name": "localgate", "provider": "openai", "model": "localgate/default",
        "apiBase": f"{root}/v1", "roles": ["chat", "edit", "apply"]}
    assert doc["context"] == [{"provider": "code"}] and doc["schema"] == "v1"
    return str(mine[0]["apiKey"])


def _opencode(doc: Any, root: str) -> str:
    mine = doc["provider"]["localgate"]
    assert mine["npm"] == "@ai-sdk/openai-compatible"
    assert mine["options"]["baseURL"] == f"{root}/v1"
    assert "localgate/default" in mine["models"]
    assert doc["model"] == "localgate/localgate/default"
    assert doc["theme"] == "tokyonight" and doc["autoupdate"] is False
    assert doc["provider"]["anthropic"] == {"options": {"timeout": 600000}}
    return str(mine["options"]["apiKey"])


def _aider(doc: Any, root: str) -> str:
    assert doc["openai-api-base"] == f"{root}/v1"
    assert doc["model"] == "openai/localgate/default"
    assert doc["auto-commits"] is False and doc["dark-mode"] is True
    return str(doc["openai-api-key"])


def _kilo(doc: Any, root: str) -> str:
    options = doc["provider"]["kilo"]["options"]
    assert options["baseURL"] == root
    assert options["kilocodeOrganizationId"] == "org-123"
    assert doc["model"] == "kilo/anthropic/claude-sonnet-4.5"
    assert doc["provider"]["openrouter"] == {"options": {"apiKey": "{env:OPENROUTER_API_KEY}"}}
    return str(options["apiKey"])


CASES = [
    Case("claude-code", "claude-code", ".claude/settings.json", """{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "model": "opus",
  "permissions": {
    "allow": ["Bash(npm run test:*)"],
    "deny": ["Read(./.env)"]
  },
  "env": {
    "BASH_DEFAULT_TIMEOUT_MS": "60000"
  }
}
""", json.loads, _claude),
    Case("codex", "codex", ".codex/config.toml", """# ~/.codex/config.toml
model = "gpt-5.2-codex"  # my usual model
approval_policy = "on-request"

# servers for docs lookups
[mcp_servers.context7]
command = "npx"
args = ["-y", "@upstash/context7-mcp"]

[model_providers.azure]
name = "Azure"
base_url = "https://example.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
query_params = { api-version = "2025-04-01-preview" }
""", tomllib.loads, _codex, ("# ~/.codex/config.toml", "# my usual model",
                             "# servers for docs lookups")),
    Case("continue", "continue", ".continue/config.yaml", """# Continue: my setup
name: Local Assistant
version: 1.0.0
schema: v1
models:
  - name: GPT-4o          # the everyday one
    provider: openai
    model: gpt-4o
    apiKey: sk-users-own
    roles:
      - chat
context:
  - provider: code
""", yaml_loads, _continue, ("# Continue: my setup", "# the everyday one")),
    Case("opencode", "opencode", ".config/opencode/opencode.jsonc", """{
  "$schema": "https://opencode.ai/config.json",
  // tokyonight everywhere
  "theme": "tokyonight",
  "autoupdate": false,
  "provider": {
    "anthropic": {
      "options": { "timeout": 600000 }, /* ten minutes */
    },
  },
}
""", jsonc_loads, _opencode, ("// tokyonight everywhere", "/* ten minutes */"),
         ".config/opencode/opencode.json"),
    Case("aider", "aider", ".aider.conf.yml", """##################################################
# Sample .aider.conf.yml
# Place in your home dir, or at the root of your git repo.
##########################################################

## Specify the model to use for the main chat
#model: xxx

## Enable/disable auto commit of LLM changes (default: True)
auto-commits: false

dark-mode: true  # my terminal is dark
""", yaml_loads, _aider, ("## Specify the model to use for the main chat", "#model: xxx",
                          "# my terminal is dark")),
    Case("kilo", "kilo-cli", ".config/kilo/kilo.jsonc", """{
  "$schema": "https://app.kilo.ai/config.json",
  // work account
  "model": "kilo/anthropic/claude-sonnet-4.5",
  "provider": {
    "kilo": {
      "options": {
        "kilocodeOrganizationId": "org-123" // the team's
      }
    },
    "openrouter": {"options": {"apiKey": "{env:OPENROUTER_API_KEY}"}}
  }
}
""", jsonc_loads, _kilo, ("// work account", "// the team's")),
]
FILE_TOOLS = [c.tool for c in CASES]
EDITORS = [("kilocode", "kilocode"), ("cline", "cline"), ("roo", "roo")]


# ---- helpers -------------------------------------------------------------------------------------

@pytest.fixture
def user(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME for the tools (never the real one), and config.toml on PORT."""
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user / ".config"))
    for var in ("CODEX_HOME", "CLAUDE_CONFIG_DIR", "CONTINUE_GLOBAL_DIR"):
        monkeypatch.delenv(var, raising=False)
    (home / "config.toml").write_bytes(tomli_w.dumps({"server": {"port": PORT}}).encode())
    return user


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localgate", *args], capture_output=True,
                          text=True, env=os.environ.copy(), timeout=20, stdin=subprocess.DEVNULL)


def clients_of(home: Path) -> dict[str, dict[str, Any]]:
    """The named clients as the keychain (the tests' keyring backend) holds them."""
    from localgate import clients
    return clients.load()


def active(home: Path, key: str) -> str | None:
    """The client name an (unrevoked) key belongs to, or None."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return next((name for name, c in clients_of(home).items()
                 if c["sha256"] == digest and not c["revoked"]), None)


def case(tool: str) -> Case:
    return next(c for c in CASES if c.tool == tool)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---- each writer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tool", FILE_TOOLS)
def test_setup_merges_backs_up_once_and_undo_restores(tool: str, user: Path, home: Path) -> None:
    c = case(tool)
    path = user / c.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(c.original)
    path.chmod(0o640)
    original = path.read_bytes()

    r = cli("setup", tool)
    assert r.returncode == 0, r.stderr
    backup = home / "setup-backups" / tool / "original"
    assert str(path) in r.stdout and str(backup) in r.stdout
    text = path.read_text()
    key = c.check(c.load(text), ROOT)
    assert key not in r.stdout, "the key must only be in the tool's file"
    assert active(home, key) == c.client
    for comment in c.comments:
        assert comment in text, f"comment lost: {comment!r}"
    assert mode(path) == 0o640
    assert backup.read_bytes() == original
    assert mode(backup) == 0o600

    r = cli("setup", tool)  # a re-run: a new key, the old one revoked, the backup untouched
    assert r.returncode == 0, r.stderr
    assert "previous one revoked" in r.stdout
    key2 = c.check(c.load(path.read_text()), ROOT)
    assert key2 != key and active(home, key2) == c.client and active(home, key) is None
    assert backup.read_bytes() == original

    r = cli("setup", tool, "--undo")
    assert r.returncode == 0, r.stderr
    assert path.read_bytes() == original
    assert mode(path) == 0o640
    assert active(home, key2) is None
    assert not backup.exists()
    assert "revoked" in r.stdout


@pytest.mark.parametrize("tool", FILE_TOOLS)
def test_setup_creates_a_private_file_and_undo_removes_it(tool: str, user: Path,
                                                           home: Path) -> None:
    c = case(tool)
    path = user / c.created
    r = cli("setup", tool, "--model", "anthropic/claude-sonnet-4.6")
    assert r.returncode == 0, r.stderr
    assert mode(path) == 0o600, "a new file holds a key: user-only"
    doc = c.load(path.read_text())
    key = {"claude-code": lambda: doc["env"]["ANTHROPIC_AUTH_TOKEN"],
           "codex": lambda: doc["model_providers"]["localgate"]["experimental_bearer_token"],
           "continue": lambda: doc["models"][0]["apiKey"],
           "opencode": lambda: doc["provider"]["localgate"]["options"]["apiKey"],
           "aider": lambda: doc["openai-api-key"],
           "kilo": lambda: doc["provider"]["kilo"]["options"]["apiKey"]}[tool]()
    assert active(home, key) == c.client
    model = {"codex": lambda: doc["model"], "continue": lambda: doc["models"][0]["model"],
             "opencode": lambda: doc["model"], "aider": lambda: doc["model"]}.get(tool)
    if model:
        assert model().endswith("anthropic/claude-sonnet-4.6")
    r = cli("setup", tool, "--undo")
    assert r.returncode == 0, r.stderr
    assert not path.exists()
    assert active(home, key) is None


@pytest.mark.parametrize("tool", FILE_TOOLS + [name for name, _ in EDITORS])
def test_print_changes_nothing(tool: str, user: Path, home: Path) -> None:
    if tool in FILE_TOOLS:
        path = user / case(tool).rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(case(tool).original)
    before_user, before_home = snapshot(user), snapshot(home)
    client = dict(EDITORS).get(tool) or case(tool).client
    r = cli("setup", tool, "--print")
    assert r.returncode == 0, r.stderr
    assert f"<new key for {client}>" in r.stdout
    assert ROOT in r.stdout
    assert "nothing changed" in r.stdout
    r = cli("setup", tool, "--undo", "--print")
    assert r.returncode == 0, r.stderr
    assert snapshot(user) == before_user
    assert snapshot(home) == before_home  # no key made, no backup


def test_print_then_undo_print_after_a_setup_keeps_everything(user: Path, home: Path) -> None:
    assert cli("setup", "codex").returncode == 0
    before_user, before_home = snapshot(user), snapshot(home)
    r = cli("setup", "codex", "--undo", "--print")
    assert r.returncode == 0, r.stderr
    assert "would remove" in r.stdout and "would revoke" in r.stdout
    assert cli("setup", "codex", "--print").returncode == 0
    assert snapshot(user) == before_user and snapshot(home) == before_home


@pytest.mark.parametrize(("tool", "client"), EDITORS)
def test_editor_extensions_get_values_to_paste(tool: str, client: str, user: Path,
                                               home: Path) -> None:
    r = cli("setup", tool)
    assert r.returncode == 0, r.stderr
    fields = dict(re.findall(r"^  ([A-Za-z ]+):\s+(\S.*)$", r.stdout, re.M))
    assert fields["API Provider"] == "OpenAI Compatible"
    assert fields["Base URL"] == f"{ROOT}/v1"
    assert fields["Model"] == "localgate/default"
    assert active(home, fields["API Key"]) == client
    assert snapshot(user) == {}, "an editor's settings are pasted, not written"
    r = cli("setup", tool, "--undo")
    assert r.returncode == 0, r.stderr
    assert active(home, fields["API Key"]) is None


# ---- refusals: nothing changed, no key made ------------------------------------------------------

@pytest.mark.parametrize(("tool", "broken"), [
    ("claude-code", '{"env": {"A": "1",}'), ("codex", "model = [unclosed\n"),
    ("continue", "models:\n  - name: a\n   apiKey: sk-secret-1\n"),
    ("opencode", "{ /* open comment"),
])
def test_a_file_that_does_not_parse_is_left_alone(tool: str, broken: str, user: Path,
                                                  home: Path) -> None:
    path = user / case(tool).rel.replace(".jsonc", ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(broken)
    r = cli("setup", tool)
    assert r.returncode == 2
    assert str(path) in r.stderr and "nothing changed" in r.stderr
    assert "line " in r.stderr, "say where"
    assert "Traceback" not in r.stderr and "sk-secret" not in r.stderr
    assert path.read_text() == broken
    assert clients_of(home) == {} and not (home / "setup-backups").exists()


def test_continue_json_config_is_not_shadowed(user: Path, home: Path) -> None:
    legacy = user / ".continue" / "config.json"
    legacy.parent.mkdir()
    legacy.write_text('{"models": []}')
    r = cli("setup", "continue")
    assert r.returncode == 2
    assert "config.json" in r.stderr
    assert not (user / ".continue" / "config.yaml").exists() and clients_of(home) == {}


def test_tool_dirs_from_the_environment_and_a_symlinked_file(user: Path, home: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    codex_home = user / "elsewhere"
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    assert cli("setup", "codex").returncode == 0
    assert (codex_home / "config.toml").exists() and not (user / ".codex").exists()
    # a dotfile manager's symlink stays a symlink; its target gets the change and the undo
    dotfiles = user / "dotfiles" / "settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text(case("claude-code").original)
    link = user / ".claude" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(dotfiles)
    assert cli("setup", "claude-code").returncode == 0
    assert link.is_symlink()
    _claude(json.loads(dotfiles.read_text()), ROOT)
    assert cli("setup", "claude-code", "--undo").returncode == 0
    assert link.is_symlink() and dotfiles.read_text() == case("claude-code").original


# ---- the keys work: a running daemon, its state file's URL, the spend log's client ---------------

def _key_and_url(tool: str, user: Path) -> tuple[str, str]:
    doc = case(tool).load((user / case(tool).created).read_text())
    return {
        "claude-code": lambda: (doc["env"]["ANTHROPIC_AUTH_TOKEN"],
                                doc["env"]["ANTHROPIC_BASE_URL"] + "/v1"),
        "codex": lambda: (doc["model_providers"]["localgate"]["experimental_bearer_token"],
                          doc["model_providers"]["localgate"]["base_url"]),
        "continue": lambda: (doc["models"][0]["apiKey"], doc["models"][0]["apiBase"]),
        "opencode": lambda: (doc["provider"]["localgate"]["options"]["apiKey"],
                             doc["provider"]["localgate"]["options"]["baseURL"]),
        "aider": lambda: (doc["openai-api-key"], doc["openai-api-base"]),
        "kilo": lambda: (doc["provider"]["kilo"]["options"]["apiKey"],
                         doc["provider"]["kilo"]["options"]["baseURL"] + "/api/v1"),
    }[tool]()


async def test_each_tools_key_works_and_spend_names_the_tool(user: Path, home: Path,
                                                             fake: FakeUpstream) -> None:
    doc = merge(provider_doc(fake.url), {"server": {"port": PORT}})
    (home / "config.toml").write_bytes(tomli_w.dumps(doc).encode())
    env = daemon_env(OPENAI_API_KEY="sk-test-openai")
    async with serve(home, env) as d, aiohttp.ClientSession() as http:
        assert d.port != PORT  # the running daemon's state file wins over config.toml
        used: dict[str, str] = {}
        for tool in FILE_TOOLS:
            code, _, err = await acli("setup", tool, env=env)
            assert code == 0, err
            used[case(tool).client], url = _key_and_url(tool, user)
            assert url.startswith(d.url + "/")
        for tool, client in EDITORS[1:]:
            code, out, err = await acli("setup", tool, env=env)
            assert code == 0, err
            used[client] = re.search(r"API Key:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
        for client, key in used.items():
            body = {"model": "openai/gpt-5.2", "messages": [{"role": "user", "content": client}]}
            async with http.post(f"{d.url}/v1/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {key}"}) as r:
                assert r.status == 200, (client, await r.text())
        code, out, err = await acli("spend", "--by", "client", "--format", "json", env=env)
        assert code == 0, err
        by_client = {row["client"]: row["requests"] for row in json.loads(out)["rows"]}
        assert by_client == {client: 1 for client in used}, by_client
        code, out, _ = await acli("spend", "--by", "client", env=env)
        for client in used:
            assert client in out
        # undo revokes at once: the running daemon refuses the key from the next request
        code, _, err = await acli("setup", "aider", "--undo", env=env)
        assert code == 0, err
        async with http.post(f"{d.url}/v1/chat/completions",
                             json={"model": "openai/gpt-5.2", "messages": []},
                             headers={"Authorization": f"Bearer {used['aider']}"}) as r:
            assert r.status == 401


def test_help_names_every_tool_and_an_unknown_tool_is_refused(user: Path, home: Path) -> None:
    r = cli("setup", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: localgate setup")
    for tool in FILE_TOOLS + [name for name, _ in EDITORS]:
        assert tool in r.stdout
    assert "setup" in cli("--help").stdout
    r = cli("setup", "vim")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert clients_of(home) == {}
