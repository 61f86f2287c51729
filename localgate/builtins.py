"""Built-in data: the providers localgate knows, the auto-model tables, OpenRouter hints.

Pure data, stdlib only. The seeds' tables are defaults; `[providers.*]` and `[auto.*]` override
them.
"""

from __future__ import annotations

from typing import Any

# slug -> defaults. `api` is the wire format; `key_env` the environment variable holding its key;
# `local` providers cost nothing and need no key; `gateway` marks the hosted gateways.
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"name": "OpenAI", "base_url": "https://api.openai.com/v1",
               "key_env": "OPENAI_API_KEY"},
    "anthropic": {"name": "Anthropic", "base_url": "https://api.anthropic.com", "api": "anthropic",
                  "key_env": "ANTHROPIC_API_KEY"},
    "google": {"name": "Google",
               "base_url": "https://generativelanguage.googleapis.com/v1beta/openai",
               "key_env": "GEMINI_API_KEY"},
    "x-ai": {"name": "xAI", "base_url": "https://api.x.ai/v1", "key_env": "XAI_API_KEY"},
    "mistral": {"name": "Mistral", "base_url": "https://api.mistral.ai/v1",
                "key_env": "MISTRAL_API_KEY", "catalog_prefix": "mistralai"},
    "moonshotai": {"name": "Moonshot AI", "base_url": "https://api.moonshot.ai/v1",
                   "key_env": "MOONSHOT_API_KEY"},
    "minimax": {"name": "MiniMax", "base_url": "https://api.minimax.io/v1",
                "key_env": "MINIMAX_API_KEY"},
    "z-ai": {"name": "Z.ai", "base_url": "https://api.z.ai/api/paas/v4", "key_env": "ZAI_API_KEY"},
    "deepseek": {"name": "DeepSeek", "base_url": "https://api.deepseek.com/v1",
                 "key_env": "DEEPSEEK_API_KEY"},
    "groq": {"name": "Groq", "base_url": "https://api.groq.com/openai/v1",
             "key_env": "GROQ_API_KEY"},
    "openrouter": {"name": "OpenRouter", "base_url": "https://openrouter.ai/api/v1",
                   "key_env": "OPENROUTER_API_KEY", "gateway": True},
    "kilo": {"name": "Kilo Gateway", "base_url": "https://api.kilo.ai/api/gateway",
             "api_url": "https://api.kilo.ai", "key_env": "KILO_API_KEY", "gateway": True},
    "ollama": {"name": "Ollama", "base_url": "http://localhost:11434/v1", "local": True},
    # LM Studio 0.4+ may require an API token (its SDKs read LM_API_TOKEN); off by default
    "lmstudio": {"name": "LM Studio", "base_url": "http://localhost:1234/v1", "local": True,
                 "key_env": "LM_API_TOKEN"},
}

# Other names the hosted catalog (and users) use for built-in providers.
ALIASES: dict[str, str] = {"mistralai": "mistral", "xai": "x-ai", "zai": "z-ai",
                           "moonshot": "moonshotai", "gemini": "google", "lm-studio": "lmstudio"}

_OPUS, _SONNET = "anthropic/claude-opus-4.6", "anthropic/claude-sonnet-4.6"
_THINKING_MODES = ("plan", "general", "architect", "orchestrator", "ask", "debug")
_DOING_MODES = ("build", "explore", "code")


def _table(thinking: str, doing: str) -> dict[str, Any]:
    modes = {m: thinking for m in _THINKING_MODES} | {m: doing for m in _DOING_MODES}
    return {"default": doing, "modes": modes}


# Virtual models resolved by the `x-kilocode-mode` header (seeds: models-and-providers).
AUTO: dict[str, dict[str, Any]] = {
    "kilo-auto/frontier": _table(_OPUS, _SONNET),
    "kilo-auto/balanced": _table("moonshotai/kimi-k2.5", "minimax/minimax-m2.7"),
    "kilo-auto/free": {"default": "minimax/minimax-m2.5:free", "modes": {}},
}
# The hosted gateway's legacy alias (FEB `kilo/auto` used the frontier table).
AUTO_ALIASES: dict[str, str] = {"kilo/auto": "kilo-auto/frontier"}

DEFAULT_MODEL_ALIAS = "localgate/default"

# Preferred inference provider sent to OpenRouter as provider.order (seeds' table).
OPENROUTER_ORDER: dict[str, str] = {
    "anthropic": "amazon-bedrock", "minimax": "minimax", "mistral": "mistral",
    "moonshotai": "moonshotai",
}
