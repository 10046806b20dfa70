"""Write the sample Lambda events in events/: one per HTTP route, plus the observer's async payload.

Usage: python scripts/make_events.py [--out DIR] [--check]

The HTTP events are API Gateway HTTP API events, payload format 2.0, shaped like the output of
`sam local generate-event apigateway http-api-proxy` (SAM CLI 1.170), with the differences a real
HTTP API shows:

- no `requestContext.authentication` (no mTLS), `requestContext.authorizer` only on the IAM routes,
  no `stageVariables`, and `cookies` / `queryStringParameters` / `pathParameters` / `body` only when
  the request has them;
- header names are lower-case, with the headers API Gateway adds (`x-forwarded-*`, `x-amzn-trace-id`);
- `routeKey` is the matched route ("POST /rtc"), both at the top and in `requestContext`, stage `$default`.

Files written (everything fixed: ids, timestamps, addresses, so re-running gives identical files):

- `rtc.json`            POST /rtc, `application/sdp`, a small SDP offer as plain text (isBase64Encoded false)
- `rtc_video.json`      the same with `?video=true`
- `rtc_live.json`       the same with `?api=live` (a GPT-Live call: /rtc posts JSON to /v1/live/sessions)
- `token.json`          POST /token, no body;  `token_get.json`  GET /token
- `sip.json`            POST /sip, an OpenAI `realtime.call.incoming` webhook, body base64-encoded
                        (isBase64Encoded true), with `webhook-id` / `webhook-timestamp` /
                        `webhook-signature` headers. The signature is the placeholder "v1,PLACEHOLDER"
                        and the timestamp is fixed in the past, so the event as committed fails
                        verification on purpose: a webhook is only valid within 5 minutes of its
                        timestamp, so tests re-sign it at run time with the current time
                        (tests/conftest.py `sign`). The JSON files cannot carry a comment: they must
                        stay valid Lambda events.
- `sip_live.json`       POST /sip, GPT-Live's `live.transport.incoming` webhook for the same kind of
                        call (`data.session_id` live_..., `data.type` "sip", `data.sip_media_security`),
                        signed the same way
- `observer_http.json`  POST /observer/{call_id}, with pathParameters {"call_id": ...}
- `observer_async.json` the payload rtc/sip send with InvocationType=Event (shared/launcher.py
                        ObserveRequest): {"call_id", "source", "requested_at", "call_started_at",
                        "generation", "agent", "caller", "dialed", "max_seconds", "minutes_day"}
- `page.json`           GET /
- `hangup_scheduled.json` what the hard stop's schedule sends the hangup function (its Input):
                        {"call_id"}
- `calls.json`          GET /calls?limit=20, an IAM-authorized route: `requestContext.authorizer.iam`
                        carries the signer (placeholder access key and user ids), as API Gateway adds it
- `call.json`           GET /calls/{call_id}, the same, with pathParameters {"call_id": ...}
- `dial.json`           POST /calls, the same signer: place an outbound call {"to", "agent", "metadata"}
- `recording.json`      GET /calls/{call_id}/recording, the same, for a GPT-Live call (`live_...`)
- `observer_outbound.json` the observer's async payload for an outbound call (source "outbound")

`--check` writes nothing and exits 1 if a file in the output folder differs from what would be written.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the shared package is at the repo root
from shared.launcher import ObserveRequest  # noqa: E402
from shared.policy import mask_number  # noqa: E402

EVENTS_DIR = ROOT / "events"

# Fixed values: documentation IP range (RFC 5737), the sample account id SAM uses, a fixed instant.
ACCOUNT_ID = "123456789012"
API_ID = "abc123defg"
REGION = "us-east-1"
DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
SOURCE_IP = "203.0.113.10"
EPOCH = 1760000000  # 2025-10-09T08:53:20Z
CALL_ID = "rtc_0123456789abcdef0123456789abcdef"
LIVE_SESSION_ID = "live_u0_0123456789abcdef0123456789abcdef"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36"
)
OPENAI_WEBHOOK_UA = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"

# A small offer as Chrome writes it for the page: one audio m-line (Opus) and the `oai-events`
# data channel; sent right after setLocalDescription, so no ICE candidates yet. CRLF line ends.
SDP_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Zq3W",
        "a=ice-pwd:4x6bGTRtTzUdLVBRnDx0Ba2Y",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 "
        "6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=msid:- 3a8f1c2e-5b7d-4e9f-a1b2-c3d4e5f60718",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=ssrc:1001 cname:Yl0f7bqTmAhW5oFr",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Zq3W",
        "a=ice-pwd:4x6bGTRtTzUdLVBRnDx0Ba2Y",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 "
        "6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC",
        "a=setup:actpass",
        "a=mid:1",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "",
    ]
)

# A GPT-Live session id, as a create answers it (outbound calls, recordings).
LIVE_SESSION_ID = "live_68e7780000000000000000000000out"
# POST /calls: an outbound call with a Live agent profile, to a (fictional, 555) number.
DIAL_BODY = {"to": "+14155550123", "agent": "sales", "metadata": {"ticket": "T-1042"}}

# The webhook OpenAI posts for an incoming SIP call (realtime.call.incoming).
SIP_WEBHOOK = {
    "object": "event",
    "id": "evt_68e7780000000000000000000000sip",
    "type": "realtime.call.incoming",
    "created_at": EPOCH,
    "data": {
        "call_id": CALL_ID,
        "sip_headers": [
            {"name": "From", "value": '"Caller" <sip:+15551230000@sip.example.com>;tag=9fxced76sl'},
            {"name": "To", "value": "<sip:+15559870000@sip.api.openai.com>"},
            {"name": "Call-ID", "value": "3848276298220188511@sip.example.com"},
        ],
    },
}

# The webhook GPT-Live posts for an incoming SIP call (live.transport.incoming; the deprecated
# live.call.incoming is the same without data.type).
SIP_LIVE_WEBHOOK = {
    "object": "event",
    "id": "evt_68e7780000000000000000000000liv",
    "type": "live.transport.incoming",
    "created_at": EPOCH,
    "data": {
        "type": "sip",
        "session_id": LIVE_SESSION_ID,
        "sip_media_security": "srtp",
        "sip_headers": SIP_WEBHOOK["data"]["sip_headers"],  # type: ignore[index]
    },
}


# Who signed a request to an IAM-authorized route, as API Gateway reports it (placeholder ids).
IAM_SIGNER = {
    "accessKey": "AKIAIOSFODNN7EXAMPLE",
    "accountId": ACCOUNT_ID,
    "callerId": "AIDACKCEVSQ6C2EXAMPLE",
    "cognitoIdentity": None,
    "principalOrgId": None,
    "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/operator",
    "userId": "AIDACKCEVSQ6C2EXAMPLE",
}
CLI_UA = "python-httpx/0.28.1"


def http_event(
    method: str,
    route: str,
    path: str,
    *,
    n: int,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    base64_body: bool = False,
    path_parameters: dict[str, str] | None = None,
    user_agent: str = BROWSER_UA,
    iam: bool = False,
) -> dict[str, Any]:
    """One HTTP API (2.0) event; `n` makes the request / trace ids and time distinct per file."""
    epoch_ms = EPOCH * 1000 + n * 1000
    all_headers = {
        "accept": "*/*",
        "content-length": str(len(body or b"")),
        "host": DOMAIN,
        "user-agent": user_agent,
        "x-amzn-trace-id": f"Root=1-68e77800-{n:024x}",
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **(headers or {}),
    }
    raw_query = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": dict(sorted(all_headers.items())),
    }
    if query:
        event["queryStringParameters"] = dict(query)
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": DOMAIN,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": SOURCE_IP,
            "userAgent": user_agent,
        },
        **({"authorizer": {"iam": IAM_SIGNER}} if iam else {}),
        "requestId": f"SNXDrg{n:04d}AMEVxg=",
        "routeKey": f"{method} {route}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms // 1000)),
        "timeEpoch": epoch_ms,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode("ascii") if base64_body else body.decode("utf-8")
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["isBase64Encoded"] = base64_body and body is not None
    return event


def webhook_event(n: int, webhook_id: str, body: bytes) -> dict[str, Any]:
    """POST /sip as OpenAI sends it: the JSON body base64-encoded, the Standard Webhooks headers with
    a placeholder signature (tests re-sign it)."""
    return http_event(
        "POST",
        "/sip",
        "/sip",
        n=n,
        headers={
            "accept": "*/*",
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(EPOCH),
            "webhook-signature": "v1,PLACEHOLDER",
        },
        body=body,
        base64_body=True,
        user_agent=OPENAI_WEBHOOK_UA,
    )


def build_events() -> dict[str, Any]:
    """File stem -> event."""
    sdp_headers = {
        "content-type": "application/sdp",
        "origin": f"https://{DOMAIN}",
        "referer": f"https://{DOMAIN}/",
    }
    sip_body = json.dumps(SIP_WEBHOOK, separators=(",", ":")).encode()
    sip_live_body = json.dumps(SIP_LIVE_WEBHOOK, separators=(",", ":")).encode()
    return {
        "rtc": http_event("POST", "/rtc", "/rtc", n=1, headers=sdp_headers, body=SDP_OFFER.encode()),
        "rtc_video": http_event(
            "POST", "/rtc", "/rtc", n=2, query={"video": "true"}, headers=sdp_headers, body=SDP_OFFER.encode()
        ),
        "rtc_live": http_event(
            "POST", "/rtc", "/rtc", n=21, query={"api": "live"}, headers=sdp_headers, body=SDP_OFFER.encode()
        ),
        "token": http_event("POST", "/token", "/token", n=3, headers={"origin": f"https://{DOMAIN}"}),
        "token_get": http_event("GET", "/token", "/token", n=4),
        "sip": webhook_event(5, "wh_68e7780000000000000000000000sip", sip_body),
        "sip_live": webhook_event(10, "wh_68e7780000000000000000000000liv", sip_live_body),
        "observer_http": http_event(
            "POST",
            "/observer/{call_id}",
            f"/observer/{CALL_ID}",
            n=6,
            path_parameters={"call_id": CALL_ID},
            user_agent="curl/8.5.0",
        ),
        # Built by the launcher's own type, so the sample cannot drift from what rtc/sip send.
        "observer_async": ObserveRequest(
            call_id=CALL_ID, source="webrtc", requested_at=float(EPOCH), call_started_at=float(EPOCH)
        ).to_event(),
        "hangup_scheduled": {"call_id": CALL_ID},
        "calls": http_event(
            "GET", "/calls", "/calls", n=8, query={"limit": "20"}, user_agent=CLI_UA, iam=True
        ),
        "call": http_event(
            "GET",
            "/calls/{call_id}",
            f"/calls/{CALL_ID}",
            n=9,
            path_parameters={"call_id": CALL_ID},
            user_agent=CLI_UA,
            iam=True,
        ),
        "dial": http_event(
            "POST",
            "/calls",
            "/calls",
            n=10,
            headers={"content-type": "application/json"},
            body=json.dumps(DIAL_BODY, separators=(",", ":")).encode(),
            user_agent=CLI_UA,
            iam=True,
        ),
        "recording": http_event(
            "GET",
            "/calls/{call_id}/recording",
            f"/calls/{LIVE_SESSION_ID}/recording",
            n=11,
            path_parameters={"call_id": LIVE_SESSION_ID},
            user_agent=CLI_UA,
            iam=True,
        ),
        "observer_outbound": ObserveRequest(
            call_id=LIVE_SESSION_ID,
            source="outbound",
            requested_at=float(EPOCH),
            call_started_at=float(EPOCH),
            agent="sales",
            dialed=mask_number(str(DIAL_BODY["to"])),
            max_seconds=1080,
        ).to_event(),
        "page": http_event(
            "GET",
            "/",
            "/",
            n=7,
            headers={"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
        ),
    }


def render(event: Any) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=EVENTS_DIR, help="output folder (default: events/)")
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    out: Path = args.out
    stale = []
    for name, event in build_events().items():
        path = out / f"{name}.json"
        text = render(event)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {path}")
    if stale:
        print("out of date (run scripts/make_events.py):", *map(str, stale), sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
