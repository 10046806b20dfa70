"""Lambda SnapStart: init does the expensive work once; a restored environment redoes what must be its own.

With SnapStart on (template parameter `SnapStart=On`), Lambda runs a function's init when a version is
published, snapshots the initialised memory, and starts every new execution environment from that one
snapshot. So, for each function:

- at a SnapStart init (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`), `prepare()` builds what the first
  request would otherwise build (by the `on_init` hooks: shared/deps.py registers its `warm`): every
  process singleton this function's settings call for (boto3
  clients and the secret provider, the call store, the session config, the OpenAI client object; no
  connection is opened and no secret is read), the TLS context, the modules the first outgoing
  request would import, and one request through the app that needs no upstream (Starlette builds its
  middleware stack on first use);
- before the snapshot, nothing secret or connected may be in it: secret caches emptied, pooled
  connections closed;
- after a restore (in every new environment): `random` reseeded (the snapshot's PRNG state is shared
  by every environment restored from it), secret caches emptied and connection pools dropped once more,
  so a secret rotated after the version was published is read fresh and no connection from before the
  snapshot is reused. Anything else that must be unique (uuid4, `secrets`) reads os.urandom already.

Without SnapStart (an on-demand init) `prepare()` builds nothing eagerly: the cold start stays as small
as the imports, and clients are built on first use (the launcher builds its boto3 client while /rtc
waits on OpenAI anyway).

The hooks are registered with `snapshot_restore_py`, which Lambda's Python managed runtimes preinstall
(a dev dependency here, so tests and `make bench` run the real registry). Where it is missing (a plain
local Python), registering is a no-op: nothing would ever call the hooks there.
"""

from __future__ import annotations

import importlib
import os
import random
import threading
from collections.abc import Callable

from shared import tls
from shared.log import logger
from shared.settings import LAMBDA_INITIALIZATION_TYPE

Hook = Callable[[], object]

# What the first outgoing request imports (httpx loads its transport stack lazily, urllib3 the idna
# codec). A SnapStart init imports them so the first request after a restore imports nothing:
# tests/test_snapstart.py checks that, function by function, so this list cannot silently go stale.
REQUEST_PATH_MODULES = (
    "httpcore",
    "h11",
    "anyio._backends._asyncio",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "certifi",
    "queue",
    # botocore's first request: urllib3 encodes the endpoint's host name with the idna codec.
    "encodings.idna",
    "stringprep",
)

_lock = threading.Lock()
_registered = False
_restore_callbacks: list[Hook] = []
_init_callbacks: list[Hook] = []


def is_snapstart_init() -> bool:
    """True while Lambda initialises a SnapStart version (the init that gets snapshotted)."""
    return os.environ.get(LAMBDA_INITIALIZATION_TYPE) == "snap-start"


def prepare(prime: Hook | None = None) -> None:
    """Called once at import by each function module: registers the hooks, and at a SnapStart init
    also warms every singleton and runs `prime` (a request that needs no upstream)."""
    _register_hooks()
    if not is_snapstart_init():
        return
    tls.client_context()  # loading the CA bundle is ~30 ms of the first outgoing connection
    for name in REQUEST_PATH_MODULES:
        importlib.import_module(name)
    if prime is not None:
        prime()  # first: it may import the modules that register `on_init` hooks (the observer's)
    built = [callback() for callback in list(_init_callbacks)]
    logger.debug("snapstart init warmed", extra={"built": built})


def on_init(callback: Hook) -> None:
    """Run `callback` at a SnapStart init (after `prime`): to build what the first request would."""
    with _lock:
        if callback not in _init_callbacks:
            _init_callbacks.append(callback)


def on_restore(callback: Hook) -> None:
    """Also run `callback` after every restore (and before the snapshot): for module-level caches that
    may hold a secret or a connection, such as sip's verifier cache."""
    with _lock:
        if callback not in _restore_callbacks:
            _restore_callbacks.append(callback)


def before_snapshot() -> None:
    """Nothing secret or connected goes into the snapshot."""
    _forget_secrets_and_connections()


def after_restore() -> None:
    """A new environment from the shared snapshot: its own PRNG state, fresh secrets, new connections."""
    random.seed()  # from os.urandom: every restored environment draws its own sequence
    _forget_secrets_and_connections()


def _forget_secrets_and_connections() -> None:
    for callback in list(_restore_callbacks):
        callback()


def _register_hooks() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        _registered = True
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not a Lambda managed runtime, nor the dev venv: nothing will call hooks
        return
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
