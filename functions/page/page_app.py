"""GET /: the web page (a single self-contained HTML file, no third-party hosts)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse

from shared.web import create_app, make_handler, read_body

PAGE = (Path(__file__).parent / "index.html").read_text(encoding="utf-8")

MAX_BODY_BYTES = 1024  # a GET carries no body; refuse anything more than a token amount

app = create_app()


@app.get("/")
async def page(request: Request) -> HTMLResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})


handler = make_handler(app)
