"""The local server: an ASGI app that plays API Gateway in front of the real Lambda handlers.

Each request becomes an HTTP API v2 event for the function that template.yaml routes it to; the
handler runs in a worker thread that keeps its own event loop (like a warm Lambda container), and
observers run as background threads instead of async invocations.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local_api.events import build_event, response_parts
from local_api.routes import Function, Route, load_handler, load_template, read_functions, read_routes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's limit
OBSERVER_FUNCTION = "ObserverFunction"


@dataclass
class LocalContext:
    """The parts of Lambda's context object that the handlers and Powertools read."""

    function: Function
    started: float = field(default_factory=time.monotonic)
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def function_name(self) -> str:
        return self.function.logical_id

    @property
    def memory_limit_in_mb(self) -> int:
        return self.function.memory

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:123456789012:function:{self.function.logical_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.function.timeout - (time.monotonic() - self.started)) * 1000))


class LocalApiGateway:
    """ASGI app routing requests to Lambda handlers exactly as template.yaml declares them."""

    def __init__(self, routes: list[Route], *, workers: int = 16) -> None:
        self.routes = routes
        self._handlers = {route.function.logical_id: load_handler(route.function) for route in routes}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")

    def invoke(self, function: Function, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._handlers[function.logical_id](event, LocalContext(function))
        return result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            await _send(
                send, 413, [("content-type", "application/json")], b'{"message":"Request Entity Too Large"}'
            )
            return
        method, path = scope["method"], scope["path"]
        for route in self.routes:
            # A CORS preflight goes to the function behind the path (API Gateway's CorsConfiguration
            # answers it in AWS; locally the function's origin policy does).
            params = route.match(route.method if method == "OPTIONS" else method, path)
            if params is not None:
                break
        else:
            await _send(send, 404, [("content-type", "application/json")], b'{"message":"Not Found"}')
            return
        client = scope.get("client") or ("127.0.0.1", 0)
        if route.iam and not is_loopback(client[0]):
            # IAM-only routes (the call records): no signature check here, so only this machine may
            # ask, however the server was bound (HOST=0.0.0.0). API Gateway's own refusal body.
            await _send(send, 403, [("content-type", "application/json")], b'{"message":"Forbidden"}')
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        event = build_event(
            route,
            method=method,
            path=path,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            path_parameters=params,
            source_ip=client[0],
        )
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self.invoke, route.function, event)
        except Exception:  # what Lambda + API Gateway do with a crashed handler
            await _send(
                send, 500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
            )
            return
        await _send(send, *response_parts(result))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback (::ffff:127.0.0.1); names and garbage are not."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers
        if k.lower() != "content-length"
    ]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_gateway(*, observers: bool = True) -> LocalApiGateway:
    """Build the gateway from template.yaml; with `observers`, install the background-thread launcher."""
    os.environ.setdefault("OBSERVER_LAUNCH", "local" if observers else "off")
    from shared import deps
    from shared.launcher import LocalObserverLauncher

    template = load_template()
    gateway = LocalApiGateway(read_routes(template))
    observer = read_functions(template)[OBSERVER_FUNCTION]
    observer_handler = load_handler(observer)
    deps.reset()
    deps.install_local_launcher(
        LocalObserverLauncher(lambda event: observer_handler(event, LocalContext(observer)))
    )
    return gateway


class LocalServer:
    """Runs the gateway under uvicorn in a background thread (tests and `make dev` both use it)."""

    def __init__(self, gateway: LocalApiGateway, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.gateway = gateway
        # API Gateway keeps idle client connections far longer than uvicorn's 5 s default; a short one
        # races with clients reusing a pooled connection (ReadError) under load.
        # proxy_headers off: uvicorn would otherwise take the client address from a loopback peer's
        # X-Forwarded-For, while API Gateway's sourceIp is always the connecting peer (shared/limits.py).
        config = uvicorn.Config(
            gateway,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=75,
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        # Bound here, not in uvicorn's thread, so a busy port is an OSError the caller can explain.
        self._socket = socket.create_server((host, port), reuse_port=False)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="local-api", daemon=True
        )

    @property
    def url(self) -> str:
        sockets = self._server.servers[0].sockets
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("local server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self.gateway.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
