"""Sample Lambda events and signed webhooks, for the tests and the benchmark (no pytest import here)."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

EVENTS = Path(__file__).resolve().parent.parent / "events"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"test-signing-secret-32-bytes-long").decode()


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return copy.deepcopy(data)


def body_of(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode()


def with_body(event: dict[str, Any], body: bytes, *, base64_encoded: bool | None = None) -> dict[str, Any]:
    encode = event.get("isBase64Encoded", False) if base64_encoded is None else base64_encoded
    event["body"] = base64.b64encode(body).decode() if encode else body.decode()
    event["isBase64Encoded"] = encode
    return event


def sign(
    event: dict[str, Any], secret: str = SIGNING_SECRET, *, webhook_id: str | None = None
) -> dict[str, Any]:
    """Re-sign a webhook event now (signatures older than 5 minutes are refused)."""
    msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, now, body_of(event).decode())
    headers = event.setdefault("headers", {})
    headers.update(
        {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    )
    return event


def incoming_call_body(
    call_id: str,
    event_type: str = "realtime.call.incoming",
    *,
    from_header: str = "sip:+15551230000@example.com",
    to_header: str = "sip:+15559870000@example.com",
) -> bytes:
    payload = {
        "object": "event",
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created_at": int(time.time()),
        "data": {
            "call_id": call_id,
            "sip_headers": [
                {"name": "From", "value": from_header},
                {"name": "To", "value": to_header},
            ],
        },
    }
    return json.dumps(payload).encode()


def live_incoming_call_body(
    session_id: str,
    event_type: str = "live.transport.incoming",
    *,
    from_header: str = "sip:+15551230000@example.com",
    to_header: str = "sip:+15559870000@example.com",
    media_security: str | None = "srtp",
) -> bytes:
    """GPT-Live's webhook for the same kind of call: `data.session_id` (`live_...`), `data.type` "sip"
    (absent from the deprecated `live.call.incoming`), `data.sip_media_security` when known."""
    data: dict[str, Any] = {
        "session_id": session_id,
        "sip_headers": [
            {"name": "From", "value": from_header},
            {"name": "To", "value": to_header},
            {"name": "Call-ID", "value": f"{uuid.uuid4().hex}@example.com"},
        ],
    }
    if event_type == "live.transport.incoming":
        data["type"] = "sip"
    if media_security is not None:
        data["sip_media_security"] = media_security
    payload = {
        "object": "event",
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created_at": int(time.time()),
        "data": data,
    }
    return json.dumps(payload).encode()


def default_session_tools() -> dict[str, object]:
    """The `tools` and `tool_choice` of a SIP or WebRTC session under the default settings (no
    TRANSFER_TARGET, no MCP servers): the built-in end_call and the example get_current_time."""
    from shared.tools import available_tools

    tools = available_tools()
    return {
        "tools": [tools[name].schema() for name in ("end_call", "get_current_time")],
        "tool_choice": "auto",
    }


def _default_instructions() -> str:
    """The instructions of the shipped `default` profile (shared/agents.yaml), as sessions carry them."""
    import yaml

    from shared.agents import DEFAULT, DEFAULT_FILE

    instructions: str = yaml.safe_load(DEFAULT_FILE.read_text())["agents"][DEFAULT]["instructions"]
    return instructions.strip()


DEFAULT_INSTRUCTIONS = _default_instructions()
