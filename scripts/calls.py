"""The deployed stack's operator API: call records (`GET /calls`, `GET /calls/{call_id}`), outbound calls
(`POST /calls`) and recordings (`GET /calls/{call_id}/recording`).

Usage (options go before or after the command; without one, `list`):
    python -m scripts.calls [--url URL | --stack NAME] list [--limit N] [--all] [--json]
    python -m scripts.calls [--url URL | --stack NAME] show CALL_ID [--json]
    python -m scripts.calls [--url URL | --stack NAME] dial +14155550123 --agent NAME [--meta KEY=VALUE]
    python -m scripts.calls [--url URL | --stack NAME] recording CALL_ID -o call.wav
    python -m scripts.calls --url http://127.0.0.1:3000 show CALL_ID      (the local stack: make dev/demo)

The API is found from `--url` (the stack's base URL or its `.../calls`), else `--stack NAME` (the stack's
`CallsApiUrl` output, read with CloudFormation's DescribeStacks), else the `CALLS_API_URL` environment
variable. Its routes use AWS_IAM auth: every request is signed with SigV4 (service `execute-api`) by
botocore, with the credentials and region of the default AWS session (`--profile`, `--region` override
them; for an execute-api URL the region comes from its host name). The caller needs
`execute-api:Invoke` on the routes it uses. The local stack (127.0.0.1, localhost) takes loopback requests
without a signature: nothing is signed for it and no AWS credentials are needed (`--sign` signs anyway).

Requests go out through botocore's own HTTP session, not httpx: the request botocore signs is the very
object it sends (no second library re-encoding the URL or headers under the signature), and it honours
the same proxy and CA-bundle settings as the AWS CLI.

Errors (no credentials, 403 from IAM, an unknown call, the network, an answer that is not the calls
API's) are one line on stderr and exit code 1. Nothing printed ever holds a credential: server
messages are cut to their first line and the session's keys are masked in them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

from boto3.session import Session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies

from local_api.server import is_loopback
from shared.policy import mask_number

URL_VARIABLE = "CALLS_API_URL"
STACK_OUTPUT = "CallsApiUrl"
PAGE_MAX = 100  # the API's own bound on `limit`
TIMEOUT = 20  # seconds, to connect and for each read
# An execute-api host names its region: <api-id>.execute-api.<region>.amazonaws.com[.cn]
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
# Transcripts are what callers and the model said: never let them drive the operator's terminal.
USAGE_KEYS = (
    "input_text_tokens",
    "input_cached_text_tokens",
    "input_audio_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "responses",
)
LIVE_USAGE_KEYS = ("seconds", "backend_input_tokens", "backend_cached_input_tokens", "backend_output_tokens")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class CliError(Exception):
    """A failure the operator can act on: printed as one line, exit code 1."""


def needs_signature(url: str) -> bool:
    """API Gateway wants SigV4; the local stack (local_api) serves loopback clients unsigned."""
    host = urlsplit(url).hostname or ""
    return not (host == "localhost" or is_loopback(host))


def calls_url(url: str) -> str:
    """The `.../calls` URL from the stack's base URL or from `.../calls` itself (trailing / ignored)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise CliError(f"not an http(s) URL: {url!r}")
    base = url.split("?", 1)[0].rstrip("/")
    return base if base.endswith("/calls") else base + "/calls"


# ---- the API --------------------------------------------------------------------------------------------


class CallsApi:
    """GETs against the operator API at `base_url` (the stack's base URL or its `CallsApiUrl`, ending in
    /calls): SigV4-signed with `session`'s credentials, or unsigned with no session (the local stack)."""

    def __init__(self, base_url: str, session: Session | None, region: str | None) -> None:
        self.base_url = calls_url(base_url)
        host_region = EXECUTE_API_HOST.match(urlsplit(self.base_url).hostname or "")
        # An explicit --region wins; else the host's own region, since a signature for another fails.
        self.region = region or (host_region.group(1) if host_region else None)
        if session is not None:
            self.region = self.region or session.region_name
            if not self.region:
                raise CliError("no AWS region: pass --region or set AWS_REGION")
        self._session = session
        # `verify` may be a CA bundle's path (botocore's endpoints pass one); its stubs say bool only.
        verify: Any = _ca_bundle(session) if session is not None else True
        self._http = URLLib3Session(
            verify=verify, proxies=get_environ_proxies(self.base_url), timeout=TIMEOUT
        )
        self._secrets: list[str] = []

    def _credentials(self) -> ReadOnlyCredentials:
        assert self._session is not None  # only signed requests ask
        try:
            credentials: Credentials | None = self._session.get_credentials()
            frozen = None if credentials is None else credentials.get_frozen_credentials()
        except BotoCoreError as exc:
            raise CliError(f"cannot load AWS credentials: {exc}") from None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise CliError(
                "no AWS credentials found: set AWS_PROFILE (or --profile), run `aws sso login`, "
                "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        self._secrets = [s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s]
        return frozen

    def get(self, path: str = "", query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """GET base_url + path (?query), signed unless `session` is None; returns the status and the
        JSON object answered."""
        return self.send("GET", path, query)

    def send(
        self,
        method: str,
        path: str = "",
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """`method` base_url + path (?query) with an optional JSON body, signed unless `session` is None
        (the body is part of the signature); returns the status and the JSON object answered."""
        # Encoded the way SigV4 canonicalizes it (RFC 3986, `quote`), so the signed query is the one sent.
        url = self.base_url + path + ("?" + urlencode(query, quote_via=quote) if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, headers=headers, data=data)
        if self._session is not None and self.region:
            SigV4Auth(self._credentials(), "execute-api", self.region).add_auth(request)
        try:
            response = self._http.send(request.prepare())
            status, content = response.status_code, response.content
            content_type = response.headers.get("content-type") or "no content type"
        except BotoCoreError as exc:
            raise CliError(
                f"cannot reach the calls API at {self.base_url}: {self._scrub(str(exc))}"
            ) from None
        try:
            body = json.loads(content) if content else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self.not_the_api(
                f"HTTP {status}, {self._scrub(content_type.split(';')[0])}, not a JSON object"
            )
        return status, body

    def not_the_api(self, what: str) -> CliError:
        return CliError(
            f"{self.base_url} did not answer like the calls API ({what}): "
            "--url takes the stack's base URL or its CallsApiUrl"
        )

    def _scrub(self, text: str) -> str:
        """One line, no credential: API Gateway's signature errors quote the canonical request,
        whose signed headers include the session token."""
        line = (text.strip().splitlines() or [""])[0][:300]
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return CONTROL.sub("?", line)

    def refusal(self, status: int, body: dict[str, Any], what: str) -> CliError:
        # Our functions answer {"error"}; API Gateway itself {"message"} (or {"Message"} from IAM).
        message = self._scrub(str(body.get("error") or body.get("message") or body.get("Message") or ""))
        if status == 403 and not body.get("error"):  # {"error"}: our function's own refusal, not IAM's
            return CliError(
                f"403 Forbidden from the calls API (IAM): {message or 'no reason given'} - the credentials "
                f"need execute-api:Invoke on GET /calls, GET /calls/*, and POST /calls to dial, "
                f"in {self.region}"
            )
        return CliError(f"{what}: {status} from the calls API: {message or 'no reason given'}")

    def pages(self, limit: int, follow: bool) -> Iterator[dict[str, Any]]:
        """The `GET /calls` pages, newest first; with `follow`, every page through `next_cursor`."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
            status, body = self.get("", query)
            if status != 200:
                raise self.refusal(status, body, "listing calls")
            if not isinstance(body.get("calls"), list):
                raise self.not_the_api("HTTP 200, a JSON object without a calls list")
            yield body
            cursor = body.get("next_cursor")
            if not follow or not cursor:
                return
            if cursor in seen:  # a server bug would otherwise loop forever
                raise CliError("the calls API returned the same next_cursor twice")
            seen.add(cursor)

    def call(self, call_id: str) -> dict[str, Any]:
        status, body = self.get("/" + quote(call_id, safe=""))
        if status == 404 and body.get("error"):
            raise CliError(f"no call {call_id!r}: {self._scrub(str(body['error']))} (404)")
        if status != 200:
            raise self.refusal(status, body, f"reading call {call_id!r}")
        if body.get("call_id") != call_id:
            raise self.not_the_api("HTTP 200, a JSON object that is not this call's record")
        return body

    def dial(self, to: str, agent: str, metadata: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {"to": to, "agent": agent} | ({"metadata": metadata} if metadata else {})
        status, answer = self.send("POST", "", body=body)
        if status != 201:
            raise self.refusal(status, answer, f"dialling {mask_number(to)}")
        if not isinstance(answer.get("call_id"), str):
            raise self.not_the_api("HTTP 201, a JSON object without a call_id")
        return answer

    def recording(self, call_id: str) -> bytes:
        """The recording's presigned URL (GET .../recording), then its bytes (unsigned: the URL carries
        its own signature)."""
        status, body = self.get("/" + quote(call_id, safe="") + "/recording")
        if status == 404 and body.get("error"):
            raise CliError(f"no recording for {call_id!r}: {self._scrub(str(body['error']))} (404)")
        if status != 200:
            raise self.refusal(status, body, f"reading the recording of {call_id!r}")
        url = body.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
            raise self.not_the_api("HTTP 200, a JSON object without a download url")
        try:
            response = self._http.send(AWSRequest(method="GET", url=url).prepare())
        except BotoCoreError as exc:
            raise CliError(f"cannot download the recording: {self._scrub(str(exc))}") from None
        if response.status_code != 200:
            raise CliError(
                f"the recording's download answered {response.status_code} (the URL lasts 5 minutes)"
            )
        return bytes(response.content)


def _ca_bundle(session: Session) -> bool | str:
    """AWS_CA_BUNDLE / the profile's ca_bundle, as the AWS CLI uses it; else the system's CAs."""
    value = session._session.get_config_variable("ca_bundle")  # boto3 exposes no public accessor
    return value if isinstance(value, str) and value else True


def api_url_from_stack(session: Session, stack: str) -> str:
    """The stack's `CallsApiUrl` output (CloudFormation DescribeStacks)."""
    try:
        client: Any = session.client("cloudformation")  # Any: no boto3 type stubs for CloudFormation here
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise CliError(f"stack {stack!r}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise CliError(f"stack {stack!r}: {exc}") from None
    for output in (stacks[0] if stacks else {}).get("Outputs") or []:
        if output.get("OutputKey") == STACK_OUTPUT:
            return str(output["OutputValue"])
    raise CliError(f"stack {stack!r} has no {STACK_OUTPUT} output (deployed before the operator API?)")


# ---- output ---------------------------------------------------------------------------------------------


def _clean(value: object) -> str:
    return CONTROL.sub("?", str(value))


def _time(value: object, with_date: bool = True) -> str:
    if not isinstance(value, str) or not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _clean(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _duration(record: dict[str, Any]) -> str:
    seconds = record.get("duration_seconds")
    if not isinstance(seconds, int | float):
        return "live" if record.get("ended_at") is None else "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _api(call_id: str) -> str:
    """The voice API of a call (older records lack `api`): its id says which."""
    return "live" if call_id.startswith("live_") else "realtime"


def _cost(value: object) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "-"


def print_table(calls: Sequence[dict[str, Any]], out: TextIO) -> None:
    header = (
        "CALL ID",
        "STARTED (UTC)",
        "API",
        "SOURCE",
        "AGENT",
        "CALLER",
        "DURATION",
        "END REASON",
        "COST",
    )
    rows = [
        (
            _clean(c.get("call_id", "")),
            _time(c.get("started_at")),
            _clean(c.get("source") or "-"),
            _clean(c.get("agent") or "-"),
            _clean(c.get("caller") or "-"),
            _duration(c),
            _clean(c.get("end_reason") or ("(live)" if c.get("ended_at") is None else "-")),
            _cost(c.get("cost_usd")),
            _clean(c.get("api") or _api(str(c.get("call_id", "")))),
        )
        for c in calls
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )
    if not rows:
        print("(no calls)", file=out)


def print_call(record: dict[str, Any], out: TextIO) -> None:
    usage = record.get("usage") or {}
    fields = [
        ("call", record.get("call_id")),
        ("api", record.get("api") or "-"),
        ("model", record.get("model") or "-"),
        ("source", record.get("source")),
        ("agent", record.get("agent")),
        ("caller", record.get("caller") or "-"),
        ("dialed", record.get("dialed") or "-"),
        ("started", _time(record.get("started_at")) + " UTC"),
        ("ended", _time(record.get("ended_at")) + " UTC" if record.get("ended_at") else "still live"),
        ("duration", _duration(record)),
        ("end reason", record.get("end_reason") or "-"),
        ("cost", _cost(record.get("cost_usd"))),
    ]
    if record.get("api") == "live":  # billed by time; tools by the backend's tokens
        u = {key: usage.get(key, 0) for key in LIVE_USAGE_KEYS}
        fields.append(("billed", f"{u['seconds']} s"))
        backend = (
            f"{record.get('backend_model') or '-'}: in {u['backend_input_tokens']} "
            f"(cached {u['backend_cached_input_tokens']}), out {u['backend_output_tokens']}"
        )
        fields.append(("backend", backend))
    elif usage:
        u = {key: usage.get(key, 0) for key in USAGE_KEYS}
        tokens = (
            f"text in {u['input_text_tokens']} (cached {u['input_cached_text_tokens']}), "
            f"audio in {u['input_audio_tokens']} (cached {u['input_cached_audio_tokens']}), "
            f"text out {u['output_text_tokens']}, audio out {u['output_audio_tokens']}; "
            f"{u['responses']} responses"
        )
        fields.append(("tokens", tokens))
    for label, value in fields:
        print(f"{label:<11}{_clean(value)}", file=out)

    turns = record.get("turns") or []
    print(f"\nTranscript ({len(turns)} turns)", file=out)
    for turn in turns:
        lines = _clean_lines(turn.get("text", ""))
        print(
            f"  {_time(turn.get('at'), with_date=False)}  {_clean(turn.get('role', '?')):<9}  {lines[0]}",
            file=out,
        )
        for line in lines[1:]:
            print(f"  {'':8}  {'':9}  {line}", file=out)

    tools = record.get("tool_calls") or []
    print(f"\nTool calls ({len(tools)})", file=out)
    for tool in tools:
        arguments = json.dumps(tool.get("arguments"), ensure_ascii=False) if tool.get("arguments") else ""
        outcome = f"error: {tool['error']}" if tool.get("error") else str(tool.get("result"))
        took = f"{tool['ms']:.1f} ms" if isinstance(tool.get("ms"), int | float) else "-"
        text = f"{_clean(tool.get('name', '?'))}({_clean(arguments)}) -> {_clean(outcome)}  [{took}]"
        print(f"  {_time(tool.get('at'), with_date=False)}  {text}", file=out)


def _clean_lines(text: object) -> list[str]:
    return [_clean(line) for line in str(text).splitlines()] or [""]


# ---- command line ---------------------------------------------------------------------------------------


def _page_size(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= PAGE_MAX:
        raise argparse.ArgumentTypeError(f"{value!r}: a whole number 1..{PAGE_MAX}")
    return number


def _common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes. Declared on the main parser (with defaults) and again on each
    command without defaults (SUPPRESS), so they may come before or after the command and a value
    given before it is not reset after it."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--url",
        default=default(None),
        help=f"the stack's base URL or its {STACK_OUTPUT} (.../calls); default ${URL_VARIABLE}",
    )
    where.add_argument(
        "--stack",
        default=default(None),
        help=f"read the URL from this CloudFormation stack's {STACK_OUTPUT} output",
    )
    parser.add_argument(
        "--region",
        default=default(None),
        help="AWS region to sign for (default: the URL's, else the session's)",
    )
    parser.add_argument(
        "--profile", default=default(None), help="AWS profile for the credentials (default: the usual chain)"
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print the API's JSON instead of a table"
    )
    parser.add_argument(
        "--sign",
        action="store_true",
        default=default(False),
        help="sign a loopback URL too (e.g. a tunnel to API Gateway); default: only other hosts",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, defaults=False)
    parser = argparse.ArgumentParser(prog="python -m scripts.calls", description=__doc__.splitlines()[0])
    _common_options(parser, defaults=True)
    parser.set_defaults(command="list", limit=20, all=False)  # no command: the latest calls
    commands = parser.add_subparsers(dest="command", metavar="{list,show,dial,recording}")
    listing = commands.add_parser("list", parents=[common], help="the latest calls, newest first (default)")
    listing.add_argument(
        "--limit", type=_page_size, default=20, help=f"calls per page (1..{PAGE_MAX}, default 20)"
    )
    listing.add_argument("--all", action="store_true", help="follow next_cursor through every page")
    show = commands.add_parser("show", parents=[common], help="one call: transcript and tool calls")
    show.add_argument("call_id", metavar="CALL_ID")
    dialing = commands.add_parser(
        "dial", parents=[common], help="place an outbound call (GPT-Live, an `api: live` agent profile)"
    )
    dialing.add_argument("to", metavar="NUMBER", help="the number to call, E.164 (+14155550123)")
    dialing.add_argument("--agent", required=True, help="the agent profile (agents.yaml) that talks")
    dialing.add_argument(
        "--meta",
        action="append",
        default=[],
        type=_label,
        metavar="KEY=VALUE",
        help="a label kept with the call",
    )
    recording = commands.add_parser("recording", parents=[common], help="download a call's recording (WAV)")
    recording.add_argument("call_id", metavar="CALL_ID")
    recording.add_argument("-o", "--output", required=True, help="the file to write (e.g. call.wav)")
    return parser.parse_args(argv)


def _label(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r}: KEY=VALUE")
    return key, text


def _session(args: argparse.Namespace) -> Session:
    try:
        return Session(profile_name=args.profile, region_name=args.region)
    except BotoCoreError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    if args.url:
        url = args.url
    elif args.stack:
        url = api_url_from_stack(_session(args), args.stack)
    else:
        url = os.environ.get(URL_VARIABLE, "")
        if not url:
            raise CliError(f"which API? pass --url or --stack NAME, or set {URL_VARIABLE}")
    url = calls_url(url)
    # The local stack (loopback) takes unsigned requests: no AWS session, so no credentials needed.
    signed = args.sign or needs_signature(url)
    api = CallsApi(url, _session(args) if signed else None, args.region)

    if args.command == "dial":
        placed = api.dial(args.to, args.agent, dict(args.meta))
        if args.json:
            json.dump(placed, out, indent=2)
            print(file=out)
        else:
            print(
                f"calling {_clean(placed.get('to', ''))} with {_clean(placed.get('agent', ''))}: "
                f"{_clean(placed['call_id'])} (`show {_clean(placed['call_id'])}` follows it)",
                file=out,
            )
        return
    if args.command == "recording":
        audio = api.recording(args.call_id)  # written only once it is all there
        with open(args.output, "wb") as target:
            target.write(audio)
        print(f"wrote {args.output} ({len(audio)} bytes)", file=out)
        return
    if args.command == "show":
        record = api.call(args.call_id)
        if args.json:
            json.dump(record, out, indent=2)
            print(file=out)
        else:
            print_call(record, out)
        return

    pages = list(api.pages(args.limit, follow=args.all))
    calls = [call for page in pages for call in page.get("calls") or []]
    more = pages[-1].get("next_cursor")
    if args.json:
        # One page as the API sent it; with --all, every call in one document.
        json.dump(pages[0] if len(pages) == 1 else {"calls": calls, "next_cursor": None}, out, indent=2)
        print(file=out)
    else:
        print_table(calls, out)
    if more and not args.all:
        print("more calls: --all lists every page", file=err)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args, sys.stdout, sys.stderr)
    except CliError as exc:
        print(f"calls: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
