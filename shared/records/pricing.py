"""What a call cost: USD per 1M tokens by model and token kind, and the estimate for a record's usage."""

from __future__ import annotations

from shared.records.model import USAGE_FIELDS, Usage

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


def estimate_cost(model: str, usage: Usage, prices: dict[str, dict[str, float]]) -> float | None:
    """USD for `usage` at `prices[model]` (per 1M tokens); None when the model has no prices."""
    table = prices.get(model)
    if table is None:
        return None
    total: float = sum(
        getattr(usage, kind) * table.get(kind, 0.0) for kind in USAGE_FIELDS if kind != "responses"
    )
    return round(total / 1_000_000, 6)


def merged_prices(overrides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        model: {**DEFAULT_TOKEN_PRICES.get(model, {}), **overrides.get(model, {})}
        for model in {*DEFAULT_TOKEN_PRICES, *overrides}
    }
