"""`localgate keys set|list|remove`: provider keys in the OS keychain (keystore.py does the work).

Argument parsing and output only. A key is read from a hidden prompt or from stdin, never from
argv, and is never printed: `list` shows its last four characters at most.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from localgate import remote
from localgate.tables import print_rows


class _Refused(Exception):
    """A usage problem: the message is for the user, exit code 2."""


def add_parser(sub: Any, fmt: Any) -> None:
    p = sub.add_parser("keys", help="your provider keys (BYOK), kept in the OS keychain")
    ksub = p.add_subparsers(dest="keys_cmd", metavar="ACTION", required=True)
    k = ksub.add_parser("set", help="store a provider's key: typed at a hidden prompt, or piped "
                        "on stdin (never an argument)")
    k.add_argument("provider", help="a provider slug (openai, anthropic, google, x-ai, ...) or "
                   "one configured in [providers.NAME]")
    # caught here rather than by argparse, whose error would echo the key back
    k.add_argument("argv_key", nargs="*", help=argparse.SUPPRESS)
    k = ksub.add_parser("list", help="which providers have a key, from where (env or keychain), "
                        "and its last four characters")
    fmt(k)
    k = ksub.add_parser("remove", help="delete a provider's stored key")
    k.add_argument("provider")
    p.set_defaults(fn=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    from localgate import config, keystore
    from localgate.errors import ConfigError
    try:
        settings = config.load()
        store = keystore.open_store()
        if args.keys_cmd == "list":
            return _list(settings, store, args.format)
        slug = _slug(settings, args.provider, keystore.stored_slugs(store))
        if args.keys_cmd == "set":
            if args.argv_key:
                raise _Refused("a key is never taken as an argument (it would stay in your "
                               "shell history and the process list): type it at the prompt, "
                               "or pipe it in")
            return _set(settings, store, slug)
        return _remove(settings, store, slug)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2)
    except _Refused as exc:
        return _fail(str(exc), 2)
    except keystore.KeychainError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:  # Ctrl-C at the prompt: nothing was stored
        print(file=sys.stderr)
        return 130


def _fail(msg: str, code: int) -> int:
    print(f"localgate: {msg}", file=sys.stderr)
    return code


def _slug(settings: Any, name: str, stored: list[str]) -> str:
    """The provider slug `name` means: a slug (any case) or an alias (mistralai, xai, gemini)."""
    from localgate import builtins
    for candidate in (name, name.strip().lower()):
        candidate = builtins.ALIASES.get(candidate, candidate)
        if candidate in settings.providers or candidate in stored:
            return candidate
    known = ", ".join(settings.providers)
    raise _Refused(f"unknown provider {name!r}: expected one of {known} (or add "
                   f"[providers.{name.strip().lower() or 'NAME'}] to config.toml)")


def _read_key(slug: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            text = getpass.getpass(f"{slug} API key (input hidden): ")
        except EOFError:  # Ctrl-D at the prompt
            text = ""
    else:
        text = sys.stdin.read() if sys.stdin is not None else ""
    key = text.strip()
    if not key:
        raise _Refused(f"no key given: type it at the prompt, or pipe it in "
                       f"(`localgate keys set {slug} < file`); it is never taken as an argument")
    if any(c.isspace() for c in key) or not key.isprintable():
        raise _Refused("that does not look like an API key (one line, no spaces)")
    return key


def _set(settings: Any, store: Any, slug: str) -> int:
    from localgate import keystore
    key = _read_key(slug)
    keystore.set_provider_key(store, slug, key)
    note = keystore.notice(store)
    if note:
        print(f"localgate: warning: {note}", file=sys.stderr)
    print(f"{slug} key ({keystore.mask(key)}) stored in {store.where}{remote.tell_daemon()}")
    env = _env_name(settings, slug)
    if env and _env_value(env):
        print(f"note: {env} is set in this environment; where it is set, it wins over the "
              "stored key", file=sys.stderr)
    return 0


def _remove(settings: Any, store: Any, slug: str) -> int:
    from localgate import keystore
    if not keystore.remove_provider_key(store, slug):
        print(f"no stored key for {slug} in {store.where}", file=sys.stderr)
        return 1
    print(f"{slug} key removed from {store.where}{remote.tell_daemon()}")
    env = _env_name(settings, slug)
    if env and _env_value(env):
        print(f"note: {env} is still set in this environment and is used where it is set",
              file=sys.stderr)
    return 0


def _list(settings: Any, store: Any, fmt: str) -> int:
    from localgate import keystore
    stored = keystore.stored_provider_keys(store)
    rows = []
    for slug in [*settings.providers, *(s for s in stored if s not in settings.providers)]:
        env = _env_name(settings, slug)
        env_key = _env_value(env) if env else None
        key = env_key or stored.get(slug)
        if not key:
            continue
        note = ""
        if env_key and slug in stored:
            note = f"the stored key is unused: {env} wins"
        elif slug not in settings.providers:
            note = "no such provider in the config"
        elif not env_key and store.kind == "file":
            note = "not encrypted"
        rows.append({"provider": slug, "source": "env" if env_key else store.kind,
                     "key": keystore.mask(key), "env_var": env, "note": note})
    where = keystore.notice(store) or f"stored keys are kept in {store.where}"
    if store.kind == "keychain" and keystore.fallback_file().exists():
        print(f"note: {keystore.fallback_file()} (not encrypted) holds keys stored when no "
              "keychain worked; the daemon moves them into the keychain when it next starts",
              file=sys.stderr)
    if fmt == "table":
        print(where)
        if not rows:
            print("no provider keys: add one with `localgate keys set PROVIDER`, or set its "
                  "environment variable")
            return 0
    elif store.kind == "file":
        print(f"localgate: warning: {where}", file=sys.stderr)
    print_rows(rows, [("provider", "provider"), ("source", "source"), ("key", "key"),
                      ("env_var", "env var"), ("note", "note")], fmt)
    return 0


def _env_name(settings: Any, slug: str) -> str | None:
    prov = settings.providers.get(slug)
    return prov.key_env if prov else None


def _env_value(name: str) -> str | None:
    return os.environ.get(name) or None
