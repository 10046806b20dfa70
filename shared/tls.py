"""One TLS client context per process, shared by every outgoing connection.

Making a context loads the CA bundle: ~25 ms of a cold start each time (`make bench`). OpenAI (HTTP
and the sideband WebSocket), DynamoDB, Secrets Manager and Lambda all verify against the same bundle,
so they share one context (an `ssl.SSLContext` is safe to share between threads and event loops).
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext:
    """The context httpx would make by default (certifi's CA bundle, hostname checks on)."""
    return httpx.create_ssl_context()
