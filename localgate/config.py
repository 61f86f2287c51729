"""Settings: read `config.toml` (tomllib), validate every known key, write it back (tomli-w).

A bad value of a known key raises ConfigError naming the key path and what it expects; unknown
keys produce warnings and are kept in the raw document so that saving never drops them.
Imports only paths, errors, builtins. Holds key *names* (environment variables), never keys.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localgate import builtins, paths
from localgate.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Provider:
    slug: str
    name: str
    base_url: str
    api: str = "openai"
    key_env: str | None = None
    api_url: str | None = None
    free: bool = False          # local / free: cost 0, no key needed when key_env is unset
    gateway: bool = False       # kilo, openrouter: take full catalog ids
    builtin: bool = True
    catalog_prefix: str = ""    # the hosted catalog's name for it, when it differs (mistralai)

    @property
    def gateway_prefix(self) -> str:
        return self.catalog_prefix or self.slug


@dataclass(frozen=True)
class AutoModel:
    default: str
    modes: dict[str, str]


@dataclass(frozen=True)
class ClientLimits:
    daily_usd: float | None = None
    allow_models: tuple[str, ...] = ()
    allow_providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8642
    allow_remote: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()   # web origins allowed to read answers (CORS)
    max_body_mb: float = 64.0
    default_model: str = "kilo-auto/balanced"
    gateway: str = "kilo"
    fallback_to_gateway: bool = True
    connect_timeout_s: float = 10.0
    first_byte_timeout_s: float = 120.0
    read_gap_timeout_s: float = 300.0
    catalog_refresh: bool = True
    providers: dict[str, Provider] = field(default_factory=dict)
    auto: dict[str, AutoModel] = field(default_factory=dict)
    daily_usd: float | None = None
    monthly_usd: float | None = None
    allow_models: tuple[str, ...] = ()
    allow_providers: tuple[str, ...] = ()
    clients: dict[str, ClientLimits] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kilo(self) -> Provider:
        return self.providers["kilo"]


# ---- validators: each returns the value or raises ConfigError naming the key --------------------

def _str(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{key}: expected a non-empty string, got {v!r}")
    return v.strip()


def _url(key: str, v: Any) -> str:
    s = _str(key, v)
    if not s.startswith(("http://", "https://")):
        raise ConfigError(f"{key}: expected an http:// or https:// URL, got {v!r}")
    return s.rstrip("/")


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{key}: expected true or false, got {v!r}")
    return v


def _port(key: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 65535:
        raise ConfigError(f"{key}: expected a port number from 0 to 65535, got {v!r}")
    return v


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _positive(key: str, v: Any) -> float:
    if not _finite(v) or v <= 0:
        raise ConfigError(f"{key}: expected a number greater than 0, got {v!r}")
    return float(v)


def _body_mb(key: str, v: Any) -> float:
    if not _finite(v) or not 0 < v <= 1024:
        raise ConfigError(f"{key}: expected a size in MB from 0 to 1024, got {v!r}")
    return float(v)


def _usd(key: str, v: Any) -> float:
    if not _finite(v) or v < 0 or v > 1e9:
        raise ConfigError(f"{key}: expected an amount in USD (a number from 0 to 1e9), "
                          f"got {v!r}")
    return float(v)


def _str_list(key: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{key}: expected a list of strings, got {v!r}")
    return tuple(v)


def _choice(*options: str) -> Callable[[str, Any], str]:
    def check(key: str, v: Any) -> str:
        if v not in options:
            raise ConfigError(f"{key}: expected one of {', '.join(map(repr, options))}, got {v!r}")
        return str(v)
    return check


def _mode_table(key: str, v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(m, str) and isinstance(t, str)
                                          for m, t in v.items()):
        raise ConfigError(f"{key}: expected a table of mode = \"provider/model\", got {v!r}")
    return {m.strip().lower(): t.strip() for m, t in v.items()}


_SECTIONS: dict[str, dict[str, Callable[[str, Any], Any]]] = {
    "server": {"host": _str, "port": _port, "allow_remote": _bool,
               "allowed_hosts": _str_list, "allowed_origins": _str_list,
               "max_body_mb": _body_mb},
    "routing": {"default_model": _str, "gateway": _choice("kilo", "openrouter"),
                "fallback_to_gateway": _bool},
    "upstream": {"connect_timeout_s": _positive, "first_byte_timeout_s": _positive,
                 "read_gap_timeout_s": _positive},
    "limits": {"daily_usd": _usd, "monthly_usd": _usd, "allow_models": _str_list,
               "allow_providers": _str_list},
    "catalog": {"refresh": _bool},
}
_PROVIDER_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "base_url": _url, "api_url": _url, "api": _choice("openai", "anthropic"), "key_env": _str,
    "free": _bool, "name": _str,
}
_CLIENT_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "daily_usd": _usd, "allow_models": _str_list, "allow_providers": _str_list,
}
_AUTO_KEYS: dict[str, Callable[[str, Any], Any]] = {"default": _str, "modes": _mode_table}


def _section(doc: dict[str, Any], name: str, schema: dict[str, Callable[[str, Any], Any]],
             warnings: list[str], prefix: str | None = None) -> dict[str, Any]:
    table = doc.get(name, {})
    where = prefix or name
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        check = schema.get(key)
        if check is None:
            warnings.append(f"unknown config key {where}.{key} (kept, ignored)")
            continue
        out[key] = check(f"{where}.{key}", value)
    return out


def _tables(doc: dict[str, Any], name: str) -> dict[str, Any]:
    tables = doc.get(name, {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError(f"{name}: expected tables like [{name}.NAME]")
    return tables


def _providers(doc: dict[str, Any], warnings: list[str]) -> dict[str, Provider]:
    given = _tables(doc, "providers")
    out: dict[str, Provider] = {}
    for slug in {**builtins.PROVIDERS, **given}:
        defaults = builtins.PROVIDERS.get(slug, {})
        vals = _section(given, slug, _PROVIDER_KEYS, warnings, f"providers.{slug}") \
            if slug in given else {}
        if not defaults and "base_url" not in vals:
            raise ConfigError(f"providers.{slug}.base_url: a new provider needs a base_url")
        merged = {**defaults, **vals}
        if "base_url" in vals and "api_url" not in vals and defaults.get("api_url"):
            # a moved gateway (a proxy, a test server) takes its service root along
            merged["api_url"] = _service_root(vals["base_url"])
        out[slug] = Provider(
            slug=slug, name=merged.get("name", slug), base_url=merged["base_url"].rstrip("/"),
            api=merged.get("api", "openai"), key_env=merged.get("key_env"),
            api_url=merged.get("api_url"),
            free=bool(merged.get("free", defaults.get("local", False))),
            gateway=bool(defaults.get("gateway", False)), builtin=bool(defaults),
            catalog_prefix=defaults.get("catalog_prefix", ""))
    return out


def _service_root(base_url: str) -> str:
    """`https://host/api/gateway` -> `https://host` (also /api/openrouter, /api/v1)."""
    for suffix in ("/api/gateway", "/api/openrouter", "/api/v1"):
        if base_url.endswith(suffix):
            return base_url[: -len(suffix)]
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _auto(doc: dict[str, Any], warnings: list[str]) -> dict[str, AutoModel]:
    given = _tables(doc, "auto")
    out = {name: AutoModel(t["default"], dict(t["modes"])) for name, t in builtins.AUTO.items()}
    for name in given:
        vals = _section(given, name, _AUTO_KEYS, warnings, f'auto."{name}"')
        base = out.get(name)
        if base is None and "default" not in vals:
            raise ConfigError(f'auto."{name}".default: a new auto model needs a default model')
        out[name] = AutoModel(vals.get("default", base.default if base else ""),
                              {**(base.modes if base else {}), **vals.get("modes", {})})
    return out


def _clients(doc: dict[str, Any], warnings: list[str]) -> dict[str, ClientLimits]:
    out = {}
    for name, _table in _tables(doc, "clients").items():
        vals = _section(_tables(doc, "clients"), name, _CLIENT_KEYS, warnings, f"clients.{name}")
        out[name] = ClientLimits(vals.get("daily_usd"), vals.get("allow_models", ()),
                                 vals.get("allow_providers", ()))
    return out


_TOP = {"server", "routing", "upstream", "limits", "catalog", "providers", "clients", "auto"}


def from_document(doc: dict[str, Any]) -> Settings:
    """Validate a parsed TOML document into Settings (raises ConfigError)."""
    warnings: list[str] = [f"unknown config section [{k}] (kept, ignored)"
                           for k in doc if k not in _TOP]
    s = {name: _section(doc, name, schema, warnings) for name, schema in _SECTIONS.items()}
    server, routing, upstream, limits = s["server"], s["routing"], s["upstream"], s["limits"]
    host = server.get("host", "127.0.0.1")
    if not is_loopback(host) and not server.get("allow_remote", False):
        raise ConfigError(f"server.host: {host!r} is not a loopback address; binding it exposes "
                          "your keys' spend to the network. Set server.allow_remote = true to "
                          "opt in")
    return Settings(
        host=host, port=server.get("port", 8642), allow_remote=server.get("allow_remote", False),
        allowed_hosts=server.get("allowed_hosts", ()),
        allowed_origins=server.get("allowed_origins", ()),
        max_body_mb=server.get("max_body_mb", 64.0),
        default_model=routing.get("default_model", "kilo-auto/balanced"),
        gateway=routing.get("gateway", "kilo"),
        fallback_to_gateway=routing.get("fallback_to_gateway", True),
        connect_timeout_s=upstream.get("connect_timeout_s", 10.0),
        first_byte_timeout_s=upstream.get("first_byte_timeout_s", 120.0),
        read_gap_timeout_s=upstream.get("read_gap_timeout_s", 300.0),
        catalog_refresh=s["catalog"].get("refresh", True),
        providers=_providers(doc, warnings), auto=_auto(doc, warnings),
        daily_usd=limits.get("daily_usd"), monthly_usd=limits.get("monthly_usd"),
        allow_models=limits.get("allow_models", ()),
        allow_providers=limits.get("allow_providers", ()),
        clients=_clients(doc, warnings), warnings=tuple(warnings), raw=doc)


def read_document(path: Path) -> dict[str, Any]:
    """The parsed file ({} when there is none); ConfigError for anything unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a directory, not a config file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8 at byte {exc.start}); "
                          "expected TOML") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load(path: Path | None = None) -> Settings:
    """Read and validate the config file (a missing file means all defaults)."""
    return from_document(read_document(path or paths.config_file()))


def save_value(section: str, key: str, value: Any, path: Path | None = None) -> Path:
    """Set `[section] key = value` in the file, keeping everything else; atomic replace."""
    import tomli_w

    from localgate import lock
    path = path or paths.config_file()
    paths.private_dir(path.parent)
    with lock.exclusive(path):  # read-modify-write: a parallel command's change survives
        doc = copy.deepcopy(read_document(path))
        table = doc.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table, got {table!r}")
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        from_document(doc)  # never write a file we could not start from
        paths.write_private(path, tomli_w.dumps(doc).encode())
    return path


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_view(s: Settings) -> dict[str, Any]:
    """The effective configuration as a TOML-able document, with no secrets in it."""
    return {
        "server": {"host": s.host, "port": s.port, "allow_remote": s.allow_remote,
                   "allowed_hosts": list(s.allowed_hosts),
                   "allowed_origins": list(s.allowed_origins), "max_body_mb": s.max_body_mb},
        "routing": {"default_model": s.default_model, "gateway": s.gateway,
                    "fallback_to_gateway": s.fallback_to_gateway},
        "upstream": {"connect_timeout_s": s.connect_timeout_s,
                     "first_byte_timeout_s": s.first_byte_timeout_s,
                     "read_gap_timeout_s": s.read_gap_timeout_s},
        "catalog": {"refresh": s.catalog_refresh},
        "limits": {k: v for k, v in {"daily_usd": s.daily_usd, "monthly_usd": s.monthly_usd,
                                     "allow_models": list(s.allow_models),
                                     "allow_providers": list(s.allow_providers)}.items()
                   if v is not None},
        "providers": {p.slug: {k: v for k, v in {
            "name": p.name, "base_url": p.base_url, "api": p.api, "api_url": p.api_url,
            "key_env": p.key_env, "free": p.free}.items() if v is not None}
            for p in s.providers.values()},
        "auto": {n: {"default": a.default, "modes": a.modes} for n, a in s.auto.items()},
        "clients": {n: {k: v for k, v in {"daily_usd": c.daily_usd,
                                          "allow_models": list(c.allow_models),
                                          "allow_providers": list(c.allow_providers)}.items()
                        if v is not None} for n, c in s.clients.items()},
    }
