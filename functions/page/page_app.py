"""GET /: the web page (a single self-contained HTML file, no third-party hosts), told the server's
default voice API (Realtime or GPT-Live: the choice it starts with)."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from shared import snapstart
from shared.agents import load_agents
from shared.settings import Settings, VoiceApi, get_settings
from shared.web import create_app, error_responses, make_handler, read_body

PAGE = (Path(__file__).parent / "index.html").read_text(encoding="utf-8")
# The page's <html> carries the server's default API (an attribute: the CSP hashes of its inline
# blocks stay the same); index.html as written says realtime.
DEFAULT_API_MARK = 'data-default-api="realtime"'

MAX_BODY_BYTES = 1024  # a GET carries no body; refuse anything more than a token amount


def _inline_hashes(tag: str) -> str:
    """CSP hash sources for the page's own inline <script>/<style> blocks (and nothing else)."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, flags=re.DOTALL)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'" for block in blocks
    )


_SCRIPTS, _STYLES = _inline_hashes("script"), _inline_hashes("style")


@lru_cache(maxsize=2)  # encoded once per API, not on every request (~40 us each)
def page_bytes(default_api: VoiceApi) -> bytes:
    return PAGE.replace(DEFAULT_API_MARK, f'data-default-api="{default_api}"', 1).encode()


# (settings, their default API): agents.yaml is read once per container (settings change only in tests).
_default_api: tuple[Settings, VoiceApi] | None = None


def default_api() -> VoiceApi:
    """The default profile's API (`api:` in agents.yaml, else VOICE_API), as /rtc and /token resolve it.
    Read here, not through the process singletons: this public function holds no client and no store."""
    global _default_api
    settings = get_settings()
    if _default_api is None or _default_api[0] is not settings:
        agents = load_agents(settings)
        _default_api = (settings, agents.default.settings.voice_api)
    return _default_api[1]


snapstart.on_init(default_api)  # a SnapStart init reads it: the first request after a restore imports nothing


@lru_cache(maxsize=4)  # one api_base per container: built on the first request, not on each
def content_security_policy(api_base: str) -> str:
    """Only this page's code runs; it may fetch this origin and, in direct mode, the OpenAI API."""
    parts = urlsplit(api_base)
    api_origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'none'; script-src {_SCRIPTS}; style-src {_STYLES}; "
        f"connect-src 'self' {api_origin}; media-src 'self' blob: mediastream:; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


app = create_app()

# Browsers ask for /favicon.ico on their own: a tiny icon (a blue dot) instead of a 404 in every log.
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="7" fill="#2563eb"/></svg>'
)

PAGE_HEADERS = ("Cache-Control", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


@app.get(
    "/",
    operation_id="page",
    summary="The web page (one self-contained HTML file with a Content-Security-Policy).",
    response_class=Response,  # the 200 is documented below; errors are JSON
    responses={
        200: {
            "description": "The page.",
            "headers": {name: {"schema": {"type": "string"}} for name in PAGE_HEADERS},
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **error_responses(413),
    },
)
async def page(request: Request) -> HTMLResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(get_settings().api_base),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(page_bytes(default_api()), headers=headers)


@app.get(
    "/favicon.ico",
    operation_id="favicon",
    summary="The page's icon (a small SVG), so the browser's own request for it is no 404.",
    response_class=Response,
    responses={
        200: {"description": "The icon.", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
        **error_responses(413),
    },
)
async def favicon(request: Request) -> Response:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


handler = make_handler(app)
