"""GET /: the web page (a single self-contained HTML file, no third-party hosts)."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse

from shared.web import create_app, make_handler

PAGE = (Path(__file__).parent / "index.html").read_text(encoding="utf-8")

app = create_app()


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})


handler = make_handler(app)
