from __future__ import annotations

from shared.errors import MissingSecretError, UpstreamError, redact


def test_redact_masks_keys_and_folds_lines() -> None:
    text = "bad key sk-proj-abcdef1234567890\nand ek_68af0e1a2b3c and whsec_c2VjcmV0c2VjcmV0 ok"
    cleaned = redact(text)
    assert "abcdef1234567890" not in cleaned
    assert "ek_68af" not in cleaned
    assert "c2VjcmV0" not in cleaned
    assert "\n" not in cleaned
    assert cleaned.count("[redacted]") == 3


def test_redact_caps_length() -> None:
    assert len(redact("x" * 5000)) == 300


def test_errors_carry_status_and_safe_reason() -> None:
    missing = MissingSecretError("OPENAI_API_KEY")
    assert missing.status_code == 500
    assert missing.reason == "Server misconfigured: OPENAI_API_KEY is not set"
    upstream = UpstreamError(
        "OpenAI answered 401: Incorrect API key provided: sk-abcdefgh1234", upstream_status=401
    )
    assert upstream.status_code == 502
    assert "sk-abcdefgh1234" not in upstream.reason
