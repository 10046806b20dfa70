"""What a call cost: USD per 1M tokens by model and token kind (Realtime; a GPT-Live backend), USD per
minute for GPT-Live's voice models, and the estimate for a record's usage."""

from __future__ import annotations

from collections.abc import Iterable

from shared.records.model import REALTIME_TOKEN_KINDS, Usage

# USD per 1M tokens by model and token kind (OpenAI's model pages, developers.openai.com/api/docs/models/
# gpt-realtime-2.1, .../gpt-realtime-2.1-mini, read 2026-12-06; .../gpt-realtime and .../gpt-realtime-mini,
# read 2026-12-02: check current pricing). TOKEN_PRICES merges over these, model by model. The retired
# models stay so that records of calls made with them keep their cost.
DEFAULT_TOKEN_PRICES: dict[str, dict[str, float]] = {
    "gpt-realtime-2.1": {
        "input_text_tokens": 4.00,
        "input_cached_text_tokens": 0.40,
        "output_text_tokens": 24.00,
        "input_audio_tokens": 32.00,
        "input_cached_audio_tokens": 0.40,
        "output_audio_tokens": 64.00,
    },
    "gpt-realtime-2.1-mini": {
        "input_text_tokens": 0.60,
        "input_cached_text_tokens": 0.06,
        "output_text_tokens": 2.40,
        "input_audio_tokens": 10.00,
        "input_cached_audio_tokens": 0.30,
        "output_audio_tokens": 20.00,
    },
    "gpt-realtime": {
        "input_text_tokens": 4.00,
        "input_cached_text_tokens": 0.40,
        "output_text_tokens": 16.00,
        "input_audio_tokens": 32.00,
        "input_cached_audio_tokens": 0.40,
        "output_audio_tokens": 64.00,
    },
    "gpt-realtime-mini": {
        "input_text_tokens": 0.60,
        "input_cached_text_tokens": 0.06,
        "output_text_tokens": 2.40,
        "input_audio_tokens": 10.00,
        "input_cached_audio_tokens": 0.30,
        "output_audio_tokens": 20.00,
    },
}


# USD per active minute of a GPT-Live session, billed per second (developers.openai.com/api/docs/
# models/gpt-live-1 and .../gpt-live-1.1, read 2026-12: check current pricing). gpt-live-1.1's standby
# rate ($0.02/min, WebRTC with `wake_policy`) does not apply: no session here is started with one.
# Responses backend tokens are billed apart, at the backend model's token prices (TOKEN_PRICES; none
# are built in).
DEFAULT_MINUTE_PRICES: dict[str, float] = {"gpt-live-1": 0.05, "gpt-live-1.1": 0.05}
# A backend's Responses tokens are text tokens: priced at its text prices.
BACKEND_TOKEN_KINDS = {
    "backend_input_tokens": "input_text_tokens",
    "backend_cached_input_tokens": "input_cached_text_tokens",
    "backend_output_tokens": "output_text_tokens",
}


def estimate_cost(
    model: str, usage: Usage, prices: dict[str, dict[str, float]], backend_model: str = ""
) -> float | None:
    """USD for `usage`: Realtime tokens at `prices[model]` (per 1M tokens); GPT-Live seconds at
    DEFAULT_MINUTE_PRICES[model] plus backend tokens at `prices[backend_model]`. A part without a
    known price adds nothing; None when no part has one."""
    per_minute = DEFAULT_MINUTE_PRICES.get(model)
    if per_minute is not None:
        total = usage.seconds * per_minute / 60
        backend = prices.get(backend_model) if backend_model else None
        if backend is not None:
            total += _tokens(usage, backend, BACKEND_TOKEN_KINDS.items()) / 1_000_000
        return round(total, 6)
    table = prices.get(model)
    if table is None:
        return None
    return round(_tokens(usage, table, ((kind, kind) for kind in REALTIME_TOKEN_KINDS)) / 1_000_000, 6)


def _tokens(usage: Usage, table: dict[str, float], kinds: Iterable[tuple[str, str]]) -> float:
    """USD x 1M for the token counts of `kinds` (usage field, price kind)."""
    return float(sum(getattr(usage, field) * table.get(kind, 0.0) for field, kind in kinds))


def merged_prices(overrides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        model: {**DEFAULT_TOKEN_PRICES.get(model, {}), **overrides.get(model, {})}
        for model in {*DEFAULT_TOKEN_PRICES, *overrides}
    }
