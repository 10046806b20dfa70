"""Standard Webhooks signatures (OpenAI's webhooks): verify, and say why a delivery was refused.

The answer to any refusal is the same bare 401 "Invalid signature"; the log line and the metric's
`reason` dimension tell them apart. The headers and the timestamp are checked here, before the
library's `verify`, so the reason never depends on the wording of its error messages:

- `missing_header`: a `webhook-id`, `webhook-timestamp` or `webhook-signature` header is absent or empty;
- `malformed`: the timestamp is not a number (or the library finds an entry it cannot read);
- `stale_timestamp` / `future_timestamp`: more than the tolerance before / after now (replays, skew);
- `bad_signature`: no signature matches the body (a wrong secret, a forgery, an altered body).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared import metrics, snapstart
from shared.errors import ClientError, ServiceError
from shared.log import logger

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
TOLERANCE_SECONDS = 5 * 60  # the library's own window, either side of now
RejectReason = Literal["missing_header", "malformed", "stale_timestamp", "future_timestamp", "bad_signature"]
REJECT_REASONS: tuple[RejectReason, ...] = (
    "missing_header",
    "malformed",
    "stale_timestamp",
    "future_timestamp",
    "bad_signature",
)


def verify(body: bytes, headers: Mapping[str, str], secret: str, now: float | None = None) -> None:
    """Return if the body is signed with `secret`; else a 401 (logged and counted with its reason)."""
    try:
        webhook = _webhook(secret)
    except ValueError:
        raise ServiceError("Server misconfigured: OPENAI_SIGNING_SECRET is not a valid secret") from None
    signed = _signature_headers(headers)
    reason = _precheck(signed, time.time() if now is None else now)
    if reason is None:
        try:
            webhook.verify(body, signed, json_parse=False)
            return
        except ValueError:  # an entry the library cannot read (no comma, bad base64, not UTF-8)
            reason = "malformed"
        except WebhookVerificationError:
            reason = "bad_signature"
    metrics.emit(metrics.SIGNATURE_REJECTED, reason=reason)
    logger.warning("webhook refused", extra={"reason": reason})
    raise ClientError(401, "Invalid signature")


def _signature_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The three signature headers by lowercase name (a request has a dozen others, which the library
    would lower-case again)."""
    return {name: value for name, value in ((k.lower(), v) for k, v in headers.items()) if name in HEADERS}


def _precheck(headers: Mapping[str, str], now: float) -> RejectReason | None:
    if not all(headers.get(name) for name in HEADERS):
        return "missing_header"
    try:
        sent_at = float(headers["webhook-timestamp"])
    except ValueError:
        return "malformed"
    if not math.isfinite(sent_at):
        return "malformed"
    if sent_at < now - TOLERANCE_SECONDS:
        return "stale_timestamp"
    if sent_at > now + TOLERANCE_SECONDS:
        return "future_timestamp"
    return None


@lru_cache(maxsize=4)  # keyed by the secret itself: emptied around a SnapStart snapshot (below)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)  # accepts `whsec_<base64>` and bare base64


snapstart.on_restore(_webhook.cache_clear)
