"""The operator CLI (`python -m scripts.calls`) against a real HTTP server on 127.0.0.1 that serves the
calls API's contract and checks every request's SigV4 signature the way API Gateway's AWS_IAM auth does:
recomputed with botocore from what arrived and the credentials it knows (tampered requests fail it).
`--stack` reads the URL from a stack's `CallsApiUrl` output on a moto server (moto's CloudFormation
keeps stack outputs).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scripts import calls as cli
from tests.calls_table import SerialMotoServer
from tests.moto_aws import boto3_client

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
# Fake credentials, shaped like real ones so a leak into the output is easy to spot.
ACCESS_KEY = "AKIAOPSCLITEST000001"
SECRET_KEY = "opsCliSecretKey/DoNotPrint/0123456789abcd"
SESSION_TOKEN = "IQoJb3BzLWNsaS1zZXNzaW9uLXRva2VuLWRvLW5vdC1wcmludA=="
CREDENTIALS = Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
# An opaque cursor with characters a query string must encode (a space: %20 in SigV4, not "+").
CURSOR = "eyJwayI6ICJj YWxsI3J0Y18y+/IiwgInQiOiAxfQ=="


class SignatureMismatch(Exception):
    pass


def verify_sigv4(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str = "execute-api",
    now: datetime | None = None,
) -> None:
    """Recompute the request's SigV4 signature as AWS would; raise SignatureMismatch unless it matches.

    The query is decoded and re-encoded canonically (as the service does), so a client must send the
    same bytes it signed; only the headers the client listed as signed are used.
    """
    header = {k.lower(): v for k, v in headers.items()}
    found = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        header.get("authorization", ""),
    )
    if not found:
        raise SignatureMismatch("no SigV4 Authorization header")
    key, day, scope_region, scope_service, signed, signature = found.groups()
    if (key, scope_region, scope_service) != (credentials.access_key, region, service):
        raise SignatureMismatch(f"wrong credential scope {key}/{scope_region}/{scope_service}")
    stamp = header.get("x-amz-date", "")
    moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if day != stamp[:8] or abs((now or datetime.now(UTC)) - moment) > timedelta(minutes=5):
        raise SignatureMismatch("request time out of range")
    if credentials.token and header.get("x-amz-security-token") != credentials.token:
        raise SignatureMismatch("wrong session token")
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        raise SignatureMismatch("host and x-amz-date must be signed")
    parts = urlsplit(url)
    request = AWSRequest(
        method=method,
        url=f"{parts.scheme}://{parts.netloc}{parts.path}",
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
        data=body,
        headers={name: header[name] for name in names if name in header},
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        raise SignatureMismatch("signature does not match")


# ---- the fake operator API -------------------------------------------------------------------------


def _record(number: int, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "call_id": f"rtc_{number:04d}",
        "source": "sip" if number % 2 else "webrtc",
        "caller": "+1555***0123" if number % 2 else "",
        "dialed": "+1555***9876" if number % 2 else "",
        "agent": "default",
        "started_at": f"2026-12-02T17:0{number}:00Z",
        "ended_at": f"2026-12-02T17:0{number}:42Z",
        "duration_seconds": 42.4,
        "end_reason": "caller_hung_up",
        "turns": [
            {"role": "assistant", "text": "Hello! How can I help?", "at": f"2026-12-02T17:0{number}:01Z"},
            {"role": "caller", "text": "What time is it\nin Paris?", "at": f"2026-12-02T17:0{number}:05Z"},
        ],
        "tool_calls": [
            {
                "name": "get_current_time",
                "arguments": {"timezone": "Europe/Paris"},
                "result": '{"time": "18:00"}',
                "error": None,
                "ms": 3.25,
                "at": f"2026-12-02T17:0{number}:06Z",
            },
            {
                "name": "transfer_call",
                "arguments": None,
                "result": None,
                "error": "no transfer target",
                "ms": 0.5,
                "at": f"2026-12-02T17:0{number}:09Z",
            },
        ],
        "usage": {
            "input_text_tokens": 120,
            "input_audio_tokens": 3400,
            "input_cached_text_tokens": 64,
            "input_cached_audio_tokens": 0,
            "output_text_tokens": 80,
            "output_audio_tokens": 2200,
            "responses": 5,
        },
        "cost_usd": 0.0412,
        "expires_at": "2027-03-02T17:00:00Z",
    }
    record.update(overrides)
    return record


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("turns", "tool_calls")}


@dataclass
class Seen:
    method: str
    url: str
    headers: dict[str, str]
    verdict: str  # "ok" or why the signature was refused


@dataclass
class FakeCallsApi:
    """GET /calls (two pages) and GET /calls/{id}, behind a SigV4 check like AWS_IAM auth."""

    records: list[dict[str, Any]]
    credentials: Credentials = CREDENTIALS
    forced: tuple[int, dict[str, Any]] | None = None  # answer this to every signed request
    seen: list[Seen] = field(default_factory=list)
    dialed: list[dict[str, Any]] = field(default_factory=list)  # POST /calls bodies that verified

    def answer(
        self, method: str, url: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, Any]]:
        try:
            verify_sigv4(method, url, headers, body, self.credentials, REGION)
        except SignatureMismatch as exc:
            self.seen.append(Seen(method, url, headers, str(exc)))
            # API Gateway's answer quotes the canonical request, session token included.
            return 403, {
                "message": "The request signature we calculated does not match the signature you provided.\n"
                f"\nThe Canonical String for this request should have been\n'GET\n/calls\n\n"
                f"x-amz-security-token:{headers.get('X-Amz-Security-Token', '')}\n'"
            }
        self.seen.append(Seen(method, url, headers, "ok"))
        if self.forced:
            return self.forced
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if method == "POST" and parts.path == "/calls":
            dialed = json.loads(body)
            self.dialed.append(dialed)
            return 201, {
                "call_id": "live_dial0001",
                "agent": dialed["agent"],
                "to": "+1415***0123",
                "max_seconds": 1080,
            }
        newest_first = sorted(self.records, key=lambda r: r["started_at"], reverse=True)
        if parts.path == "/calls":
            limit = int(query.get("limit", "20"))
            start = 0 if "cursor" not in query else (limit if query["cursor"] == CURSOR else -1)
            if start < 0:
                return 400, {"error": "Invalid request: bad cursor"}
            page = newest_first[start : start + limit]
            more = start + limit < len(newest_first)
            assert start == 0 or not more, "the fake serves two pages at most"
            return 200, {"calls": [_summary(r) for r in page], "next_cursor": CURSOR if more else None}
        if parts.path.startswith("/calls/"):
            for record in self.records:
                if record["call_id"] == parts.path.removeprefix("/calls/"):
                    return 200, record
            return 404, {"error": "No such call"}
        return 404, {"message": "Not Found"}


@pytest.fixture
def api() -> Iterator[tuple[FakeCallsApi, str]]:
    fake = FakeCallsApi([_record(n) for n in (1, 2, 3)])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = f"http://{self.headers['Host']}{self.path}"
            status, body = fake.answer("GET", url, dict(self.headers.items()))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            url = f"http://{self.headers['Host']}{self.path}"
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = fake.answer("POST", url, dict(self.headers.items()), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/calls"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Known fake credentials and nothing from this machine: no config files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower().endswith("_proxy") or name == cli.URL_VARIABLE:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """The CLI against API Gateway's stand-in: on 127.0.0.1, so `--sign` (loopback is otherwise unsigned)."""
    capsys.readouterr()
    code = cli.main([*argv, "--sign"])
    out, err = capsys.readouterr()
    for secret in (SECRET_KEY, SESSION_TOKEN, "Signature="):
        assert secret not in out + err, "a credential reached the output"
    if code:
        assert err.count("\n") == 1, f"one line on stderr: {err!r}"
        assert err.startswith("calls: ")
        assert "Traceback" not in err
    return Result(code, out, err)


# ---- the verifier itself ---------------------------------------------------------------------------


def test_the_verifier_accepts_the_cli_s_requests_and_refuses_tampered_ones(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    assert run(capsys, "list", "--all", "--limit", "2", "--url", url).code == 0
    first, second = fake.seen
    assert (first.verdict, second.verdict) == ("ok", "ok")
    verify_sigv4(second.method, second.url, second.headers, b"", CREDENTIALS, REGION)  # as received: fine

    def refused(**change: Any) -> str:
        args: dict[str, Any] = {
            "method": second.method,
            "url": second.url,
            "headers": dict(second.headers),
            "body": b"",
            "credentials": CREDENTIALS,
            "region": REGION,
        }
        args.update(change)
        with pytest.raises(SignatureMismatch) as caught:
            verify_sigv4(**args)
        return str(caught.value)

    assert "limit=100" not in second.url
    assert refused(url=second.url.replace("limit=2", "limit=100")) == "signature does not match"
    assert refused(url=second.url.replace("/calls", "/calls/rtc_0001")) == "signature does not match"
    assert refused(method="DELETE") == "signature does not match"
    assert refused(body=b"{}") == "signature does not match"
    accept = {**second.headers, "Accept": "text/html"}  # a signed header changed
    assert refused(headers=accept) == "signature does not match"
    forged = re.sub(r"Signature=[0-9a-f]{64}", "Signature=" + "0" * 64, second.headers["Authorization"])
    assert refused(headers={**second.headers, "Authorization": forged}) == "signature does not match"
    other = Credentials(ACCESS_KEY, SECRET_KEY + "x", SESSION_TOKEN)
    assert refused(credentials=other) == "signature does not match"
    assert refused(region="eu-west-1").startswith("wrong credential scope")
    assert refused(now=datetime.now(UTC) + timedelta(minutes=6)) == "request time out of range"
    del accept["Authorization"]
    assert refused(headers=accept) == "no SigV4 Authorization header"

    # And through the server: the same request with its query changed is refused there too.
    headers = {k: v for k, v in second.headers.items() if k.lower() != "host"}
    tampered = urllib.request.Request(second.url.replace("limit=2", "limit=1"), headers=headers)  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(tampered, timeout=5)  # noqa: S310 - our server on 127.0.0.1
    assert answer.value.code == 403
    assert fake.seen[-1].verdict == "signature does not match"


# ---- list and show ---------------------------------------------------------------------------------


def test_list_all_follows_next_cursor_and_prints_a_table(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    result = run(capsys, "list", "--all", "--limit", "2", "--url", url)
    assert result.code == 0
    assert result.err == ""
    assert [s.verdict for s in fake.seen] == ["ok", "ok"]
    first, second = (dict(parse_qsl(urlsplit(s.url).query)) for s in fake.seen)
    assert first == {"limit": "2"}
    assert second == {"limit": "2", "cursor": CURSOR}  # the opaque cursor arrived intact
    header, *rows = result.out.splitlines()
    columns = (
        "CALL ID",
        "STARTED (UTC)",
        "SOURCE",
        "AGENT",
        "CALLER",
        "DURATION",
        "END REASON",
        "COST",
        "API",
    )
    for column in columns:
        assert column in header
    assert [row.split()[0] for row in rows] == ["rtc_0003", "rtc_0002", "rtc_0001"]  # newest first
    assert rows[0].split() == [
        "rtc_0003",
        "2026-12-02",
        "17:03:00",
        "sip",
        "default",
        "+1555***0123",
        "0m42s",
        "caller_hung_up",
        "$0.0412",
        "realtime",
    ]
    assert rows[1].split()[3:5] == ["webrtc", "default"]
    assert rows[1].split()[5] == "-"  # no caller on a WebRTC call


def test_list_without_all_prints_one_page_and_says_there_is_more(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    result = run(capsys, "list", "--limit", "2", "--url", url)
    assert result.code == 0
    assert len(fake.seen) == 1
    assert len(result.out.splitlines()) == 3
    assert result.err == "more calls: --all lists every page\n"


def test_a_live_call_shows_as_live(api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    fake.records = [_record(1, ended_at=None, duration_seconds=None, end_reason=None, cost_usd=None)]
    row = run(capsys, "list", "--url", url).out.splitlines()[1].split()
    assert row[-4:] == ["live", "(live)", "-", "realtime"]  # duration "live": the call goes on


def test_json_prints_the_api_s_json(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = api
    one_page = json.loads(run(capsys, "list", "--limit", "2", "--json", "--url", url).out)
    assert one_page == {"calls": [_summary(_record(3)), _summary(_record(2))], "next_cursor": CURSOR}
    every = json.loads(run(capsys, "list", "--all", "--limit", "2", "--json", "--url", url).out)
    assert every == {"calls": [_summary(_record(n)) for n in (3, 2, 1)], "next_cursor": None}
    record = json.loads(run(capsys, "show", "rtc_0002", "--json", "--url", url).out)
    assert record == _record(2)


def test_show_prints_the_transcript_and_the_tool_calls(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    result = run(capsys, "show", "rtc_0001", "--url", url)
    assert result.code == 0
    assert urlsplit(fake.seen[0].url).path == "/calls/rtc_0001"
    out = result.out
    assert re.search(r"^call\s+rtc_0001$", out, re.M)
    assert re.search(r"^caller\s+\+1555\*\*\*0123$", out, re.M)
    assert re.search(r"^end reason\s+caller_hung_up$", out, re.M)
    assert re.search(r"^cost\s+\$0\.0412$", out, re.M)
    assert (
        "text in 120 (cached 64), audio in 3400 (cached 0), text out 80, audio out 2200; 5 responses" in out
    )
    transcript = out[out.index("Transcript (2 turns)") : out.index("Tool calls")]
    assert re.search(r"17:01:01\s+assistant\s+Hello! How can I help\?", transcript)
    assert re.search(r"17:01:05\s+caller\s+What time is it\n\s+in Paris\?", transcript)  # continued, indented
    tools = out[out.index("Tool calls (2)") :]
    assert 'get_current_time({"timezone": "Europe/Paris"}) -> {"time": "18:00"}  [3.2 ms]' in tools
    assert "transfer_call() -> error: no transfer target  [0.5 ms]" in tools


def test_caller_text_cannot_drive_the_terminal(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    evil = "\x1b]0;owned\x07\x1b[2Jhi"
    fake.records = [
        _record(1, turns=[{"role": "caller", "text": evil, "at": "2026-12-02T17:01:01Z"}], agent=evil)
    ]
    out = run(capsys, "show", "rtc_0001", "--url", url).out + run(capsys, "list", "--url", url).out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "?]0;owned??[2Jhi" in out


# ---- errors ----------------------------------------------------------------------------------------


def test_an_unknown_call_is_one_line(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = api
    result = run(capsys, "show", "rtc_9999", "--url", url)
    assert result.code == 1
    assert result.err == "calls: no call 'rtc_9999': No such call (404)\n"
    assert result.out == ""


def test_a_call_id_cannot_leave_the_calls_path(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    assert run(capsys, "show", "../admin?x=1", "--url", url).code == 1
    assert urlsplit(fake.seen[0].url).path == "/calls/..%2Fadmin%3Fx%3D1"
    assert fake.seen[0].verdict == "ok"  # signed over the encoded path


def test_403_from_iam_is_one_line(api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    denied = "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: execute-api:Invoke"
    fake.forced = (403, {"Message": denied})
    result = run(capsys, "list", "--url", url)
    assert result.code == 1
    assert result.err.startswith(f"calls: 403 Forbidden from the calls API (IAM): {denied} - ")
    assert "execute-api:Invoke on GET /calls" in result.err


def test_a_bad_signature_403_never_echoes_the_session_token(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = api
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY[::-1])  # the wrong secret: the server refuses
    result = run(capsys, "show", "rtc_0001", "--url", url)  # run() checks neither secret nor token shows
    assert fake.seen[0].verdict == "signature does not match"
    assert result.code == 1
    assert "403 Forbidden" in result.err
    assert "The request signature we calculated does not match" in result.err
    assert SECRET_KEY[::-1] not in result.err


def test_other_statuses_name_the_status_and_reason(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = api
    fake.forced = (500, {"error": "Internal error\nwith a second line"})
    result = run(capsys, "list", "--url", url)
    assert result.err == "calls: listing calls: 500 from the calls API: Internal error\n"
    fake.forced = None
    result = run(capsys, "list", "--url", url.removesuffix("/calls") + "/nothing")
    assert result.err == "calls: listing calls: 404 from the calls API: Not Found\n"


def test_no_credentials_is_one_line_and_sends_nothing(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = api
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    result = run(capsys, "list", "--url", url)
    assert result.code == 1
    assert result.err.startswith("calls: no AWS credentials found: ")
    assert fake.seen == []
    monkeypatch.setenv("AWS_PROFILE", "nobody")  # a named profile that does not exist
    result = run(capsys, "list", "--url", url)
    assert result.err == "calls: The config profile (nobody) could not be found\n"


def test_network_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nobody listens there
    result = run(capsys, "list", "--url", f"http://127.0.0.1:{port}/calls")
    assert result.code == 1
    assert result.err.startswith(f"calls: cannot reach the calls API at http://127.0.0.1:{port}/calls: ")


def test_which_api_when_none_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "list")
    assert result.err == "calls: which API? pass --url or --stack NAME, or set CALLS_API_URL\n"
    assert run(capsys, "list", "--url", "ftp://example.com/calls").err.startswith("calls: not an http(s) URL")


def test_the_url_can_come_from_the_environment(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = api
    monkeypatch.setenv(cli.URL_VARIABLE, url)
    assert run(capsys, "list").code == 0
    assert fake.seen[0].verdict == "ok"


def test_an_execute_api_url_signs_for_its_own_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from boto3.session import Session

    session = Session(region_name="us-east-1")
    api = cli.CallsApi("https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/calls/", session, None)
    assert (api.region, api.base_url) == (
        "eu-west-2",
        "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/calls",
    )
    assert cli.CallsApi("https://calls.example.com/calls", session, None).region == "us-east-1"
    assert cli.CallsApi(
        "https://a1.execute-api.eu-west-2.amazonaws.com/calls", session, "us-west-2"
    ).region == (
        "us-west-2"  # --region wins
    )


# ---- --stack ---------------------------------------------------------------------------------------


def test_stack_reads_calls_api_url_from_the_stack_outputs(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = api
    with SerialMotoServer() as moto:
        cloudformation = boto3_client("cloudformation", moto.endpoint)
        topic = {"Topic": {"Type": "AWS::SNS::Topic"}}
        outputs = {cli.STACK_OUTPUT: {"Value": url}, "PageUrl": {"Value": "http://127.0.0.1:1/"}}
        cloudformation.create_stack(
            StackName="ops-stack", TemplateBody=json.dumps({"Resources": topic, "Outputs": outputs})
        )
        cloudformation.create_stack(StackName="old-stack", TemplateBody=json.dumps({"Resources": topic}))
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", moto.endpoint)

        result = run(capsys, "list", "--stack", "ops-stack")
        assert result.code == 0
        assert [s.verdict for s in fake.seen] == ["ok"]
        assert "rtc_0003" in result.out

        missing = run(capsys, "list", "--stack", "no-such-stack")
        assert missing.err == "calls: stack 'no-such-stack': Stack with id no-such-stack does not exist\n"
        old = run(capsys, "show", "rtc_0001", "--stack", "old-stack")
        assert (
            old.err
            == "calls: stack 'old-stack' has no CallsApiUrl output (deployed before the operator API?)\n"
        )
    assert len(fake.seen) == 1


def test_the_module_runs_as_python_dash_m(api: tuple[FakeCallsApi, str]) -> None:
    fake, url = api
    command = [sys.executable, "-m", "scripts.calls"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [*command, "list", "--all", "--limit", "2", "--url", url, "--sign"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4
    assert [s.verdict for s in fake.seen] == ["ok", "ok"]
    done = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [*command, "--sign", "show", "rtc_4040", "--url", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "calls: no call 'rtc_4040': No such call (404)\n"


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_limit_is_checked_before_any_request(
    api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    fake, url = api
    with pytest.raises(SystemExit) as stopped:
        cli.main(["list", "--limit", limit, "--url", url])
    assert stopped.value.code == 2  # argparse's usage error
    assert f"argument --limit: '{limit}': a whole number 1..100" in capsys.readouterr().err
    assert fake.seen == []


# ---- the local stack (make dev / make demo): loopback, unsigned ----------------------------------------


@pytest.fixture
def local_stack(env: pytest.MonkeyPatch) -> Iterator[str]:
    """The local stack with one finished call recorded; its base URL. No AWS credentials at all."""
    from local_api.server import LocalServer, create_gateway
    from shared import deps
    from shared.records import CallMeta, RecordBatch, turn

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.delenv(name, raising=False)
    env.setenv("AWS_PROFILE", "nobody")  # a profile that does not exist: any Session() would fail
    deps.reset()
    meta = CallMeta(
        call_id="rtc_local0001",
        source="sip",
        caller="+1212***0123",
        dialed="+1212***0150",
        agent="default",
        model="gpt-realtime",
        started_at=1_800_000_000.0,
    )
    batch = RecordBatch(turns=[turn("caller", "Hello there", 30)])
    batch.ended_at, batch.end_reason = 1_800_000_030.0, "caller_hung_up"
    with LocalServer(create_gateway()) as server:  # create_gateway resets deps: record after it
        deps.record_store().write(meta, batch, first=True)
        yield server.url


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "{base}", "list"],
        ["list", "--url", "{base}/"],
        ["--url", "{base}/calls"],  # no command: list
        ["--json", "--url", "{base}", "show", "rtc_local0001"],
        ["show", "rtc_local0001", "--url", "{base}/calls/", "--json"],
        ["--url", "{base}", "show", "rtc_local0001"],
    ],
)
def test_the_local_stack_needs_no_credentials_and_options_go_anywhere(
    local_stack: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = cli.main([arg.format(base=local_stack) for arg in argv])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    if "--json" in argv:
        assert json.loads(out)["end_reason"] == "caller_hung_up"
    elif "show" in argv:
        assert "end reason caller_hung_up" in out
        assert "caller     Hello there" in out
    else:
        assert out.splitlines()[1].startswith("rtc_local0001  2027-01-15 08:00:00  sip")


def test_options_before_the_command_are_not_reset_after_it(local_stack: str) -> None:
    args = cli.parse_args(["--json", "--url", local_stack, "show", "rtc_x"])
    assert (args.json, args.url, args.command, args.call_id) == (True, local_stack, "show", "rtc_x")
    args = cli.parse_args(["--url", "http://a", "list", "--url", "http://b"])
    assert args.url == "http://b"  # the later one wins, as with any repeated option


class AnyAnswer(BaseHTTPRequestHandler):
    """Answers every GET with the class's status, content type and body (not the calls API)."""

    answer: tuple[int, str, bytes] = (200, "text/html", b"<!doctype html><title>page</title>")

    def do_GET(self) -> None:
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "argv", "what"),
    [
        (
            (200, "text/html; charset=utf-8", b"<html>page</html>"),
            ["list"],
            "HTTP 200, text/html, not a JSON object",
        ),
        ((200, "application/json", b"[1, 2]"), ["list"], "HTTP 200, application/json, not a JSON object"),
        (
            (200, "application/json", b'{"ok": true}'),
            ["list"],
            "HTTP 200, a JSON object without a calls list",
        ),
        (
            (200, "application/json", b'{"call_id": "rtc_other"}'),
            ["show", "rtc_local0001"],
            "HTTP 200, a JSON object that is not this call's record",
        ),
        ((502, "text/html", b"<html>Bad gateway</html>"), ["list"], "HTTP 502, text/html, not a JSON object"),
    ],
)
def test_an_answer_that_is_not_the_calls_api_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], answer: tuple[int, str, bytes], argv: list[str], what: str
) -> None:
    handler = type("Handler", (AnyAnswer,), {"answer": answer})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            code = cli.main([*argv, "--url", base])
        finally:
            server.shutdown()
            thread.join(timeout=5)
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        f"calls: {base}/calls did not answer like the calls API ({what}): "
        "--url takes the stack's base URL or its CallsApiUrl\n"
    )


# ---- outbound calls and recordings ---------------------------------------------------------------------


def test_dial_signs_its_body(api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    result = run(capsys, "dial", "+14155550123", "--url", url, "--agent", "sales", "--meta", "ticket=T-9")
    assert result.code == 0, result.err
    assert result.out == "calling +1415***0123 with sales: live_dial0001 (`show live_dial0001` follows it)\n"
    assert [s.verdict for s in fake.seen] == ["ok"]  # the signature covers the JSON body
    assert fake.dialed == [{"to": "+14155550123", "agent": "sales", "metadata": {"ticket": "T-9"}}]


def test_dial_needs_an_agent(api: tuple[FakeCallsApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    with pytest.raises(SystemExit):
        cli.main(["dial", "+14155550123", "--url", url])
    assert "--agent" in capsys.readouterr().err
    assert fake.seen == []


@pytest.fixture
def outbound_stack(
    env: pytest.MonkeyPatch, fake: Any, moto_endpoint: str, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """The local stack with outbound calls on (the fake places them) and a recordings bucket on the
    moto server; its base URL and the bucket."""
    import uuid

    from local_api.server import LocalServer, create_gateway
    from tests.conftest import TRUNK
    from tests.moto_aws import aws_environment

    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  sales:\n    api: live\n")
    bucket = f"recordings-{uuid.uuid4().hex[:12]}"
    for name, value in {
        **aws_environment(moto_endpoint),
        "AGENTS_FILE": str(agents),
        "OUTBOUND_TRUNK": json.dumps(TRUNK),
        "OUTBOUND_ALLOWED_PREFIXES": "+1415",
        "RECORDINGS_BUCKET_NAME": bucket,
        "OBSERVER_LAUNCH": "off",  # the observer's side of outbound calls is tested with the observer
    }.items():
        env.setenv(name, value)
    boto3_client("s3", moto_endpoint).create_bucket(Bucket=bucket)
    fake.live.outbound_enabled = True
    with LocalServer(create_gateway(observers=False)) as server:
        yield server.url, bucket


def test_the_local_stack_dials_and_hands_out_the_recording(
    outbound_stack: tuple[str, str],
    fake: Any,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from shared import deps
    from shared.recordings import recording_key
    from shared.records import CallMeta, RecordBatch

    base, bucket = outbound_stack
    assert cli.main(["dial", "+14155550123", "--agent", "sales", "--url", base, "--json"]) == 0
    # The local stack's log lines and metrics (one JSON each) share stdout; the answer is indented.
    out = capsys.readouterr().out
    placed = json.loads("".join(line for line in out.splitlines(True) if not line.startswith('{"')))
    assert placed["call_id"].startswith("live_")
    assert fake.live.create_count == 1
    assert cli.main(["--url", base, "dial", "+12125550123", "--agent", "sales"]) == 1
    assert capsys.readouterr().err == (
        "calls: dialling +1212***0123: 403 from the calls API: Destination +1212***0123 is not in "
        "OUTBOUND_ALLOWED_PREFIXES\n"
    )
    call_id = placed["call_id"]
    meta = CallMeta(call_id, "outbound", "", "+1415***0123", "sales", "gpt-live-1.1", 1_800_000_000.0)
    assert cli.main(["recording", call_id, "-o", str(tmp_path / "none.wav"), "--url", base]) == 1
    assert "no recording for" in capsys.readouterr().err
    assert not (tmp_path / "none.wav").exists()
    boto3_client("s3", moto_endpoint).put_object(
        Bucket=bucket, Key=recording_key(call_id), Body=b"RIFF-local"
    )
    deps.record_store().write(meta, RecordBatch(recording="stored"))
    target = tmp_path / "call.wav"
    assert cli.main(["recording", call_id, "-o", str(target), "--url", base]) == 0
    assert f"wrote {target} (10 bytes)\n" in capsys.readouterr().out
    assert target.read_bytes() == b"RIFF-local"
