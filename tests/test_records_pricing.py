"""What a call cost: the usage of a `response.done` (shared/records/model.py `usage_of`) priced by the
token price table merged with TOKEN_PRICES (shared/records/pricing.py)."""

from __future__ import annotations

import pytest

from shared.records import Usage, estimate_cost, merged_prices, usage_of

FULL_USAGE = {
    "total_tokens": 1000,
    "input_tokens": 800,
    "output_tokens": 200,
    "input_token_details": {
        "text_tokens": 300,
        "audio_tokens": 500,
        "cached_tokens": 250,
        "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 150},
    },
    "output_token_details": {"text_tokens": 50, "audio_tokens": 150},
}


def test_usage_splits_cached_tokens_out_and_tolerates_missing_fields() -> None:
    assert usage_of({"usage": FULL_USAGE}) == {
        "input_text_tokens": 200,
        "input_audio_tokens": 350,
        "input_cached_text_tokens": 100,
        "input_cached_audio_tokens": 150,
        "output_text_tokens": 50,
        "output_audio_tokens": 150,
        "responses": 1,
    }
    # The fake's shape: no cached details at all; and responses without usage, or with junk in it.
    sparse = usage_of({"usage": {"input_token_details": {"text_tokens": 181}, "output_token_details": None}})
    assert sparse["input_text_tokens"] == 181
    assert sparse["input_cached_text_tokens"] == sparse["output_audio_tokens"] == 0
    assert usage_of({}) == {"responses": 1}
    junk = usage_of({"usage": {"input_token_details": {"text_tokens": "9", "audio_tokens": -4}}})
    assert junk["input_text_tokens"] == junk["input_audio_tokens"] == 0


def test_cost_uses_the_price_table_merged_with_settings() -> None:
    usage = Usage(**{k: v for k, v in usage_of({"usage": FULL_USAGE}).items()})
    prices = merged_prices({})
    # 200*4 + 350*32 + 100*0.4 + 150*0.4 + 50*16 + 150*64 = 22,500 USD per 1M tokens
    assert estimate_cost("gpt-realtime", usage, prices) == pytest.approx(0.0225)
    mini = 200 * 0.6 + 350 * 10 + 100 * 0.06 + 150 * 0.3 + 50 * 2.4 + 150 * 20
    assert estimate_cost("gpt-realtime-mini", usage, prices) == pytest.approx(mini / 1e6)
    assert estimate_cost("gpt-realtime-2", usage, prices) is None  # no price known: no guess
    custom = merged_prices(
        {"gpt-realtime": {"output_audio_tokens": 0}, "house-model": {"input_text_tokens": 1}}
    )
    assert estimate_cost("gpt-realtime", usage, custom) == pytest.approx((22_500 - 150 * 64) / 1e6)
    assert estimate_cost("house-model", usage, custom) == pytest.approx(200 / 1e6)
