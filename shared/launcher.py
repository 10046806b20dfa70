"""Starts the observer for a call: an async Lambda invoke in AWS, a background thread locally."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from shared.errors import ServiceError
from shared.log import logger

CallSource = Literal["webrtc", "sip", "api"]


@dataclass(frozen=True)
class ObserveRequest:
    """The async event the observer worker receives (`events/observer_async.json`).

    `call_started_at` (unix s) anchors the call's length limit across hand-offs; `generation` counts
    hand-offs (0 = the first observer, the only one that greets the caller).
    """

    call_id: str
    source: CallSource
    requested_at: float = field(default_factory=time.time)
    call_started_at: float | None = None
    generation: int = 0

    def to_event(self) -> dict[str, Any]:
        return asdict(self)


class ObserverLauncher(Protocol):
    def launch(self, request: ObserveRequest) -> None: ...


class LambdaObserverLauncher:
    """Invokes the observer function asynchronously (`InvocationType="Event"`): returns at once."""

    def __init__(self, function_name: str, lambda_client: Any | None = None) -> None:
        if not function_name:
            raise ServiceError("Server misconfigured: OBSERVER_FUNCTION_NAME is not set")
        self.function_name = function_name
        self._client = lambda_client
        self._pending: Future[Any] | None = None

    def prepare(self) -> None:
        """Start building the boto3 client in a thread, once per container.

        Importing boto3 and loading the Lambda service model takes ~0.25 s of a cold start (`make
        bench`); every launch comes right after an OpenAI call, so built in the background the client
        is usually ready when that call returns instead of adding its time to the response.
        """
        if self._client is None and self._pending is None:
            pending: Future[Any] = Future()
            threading.Thread(target=_build_client, args=(pending,), name="lambda-client", daemon=True).start()
            self._pending = pending

    def launch(self, request: ObserveRequest) -> None:
        if self._client is None:
            pending, self._pending = self._pending, None
            # A failed background build raises here, like a build done now would (and is retried next time).
            self._client = pending.result() if pending is not None else _lambda_client()
        response = self._client.invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(request.to_event()).encode(),
        )
        status = response.get("StatusCode")
        if status != 202:
            raise ServiceError(f"Observer launch failed (status {status})")
        logger.info("observer launched", extra={"call_id": request.call_id, "source": request.source})


def _lambda_client() -> Any:
    import boto3  # only the functions that launch observers pay for boto3

    # Its own Session, not boto3's shared default one: this may run in prepare()'s thread while the
    # request builds another client (boto3 sessions are not thread-safe; clients are).
    return boto3.session.Session().client("lambda")


def _build_client(pending: Future[Any]) -> None:
    try:
        pending.set_result(_lambda_client())
    except BaseException as exc:  # handed to launch(), which raises it in the request
        pending.set_exception(exc)


class LocalObserverLauncher:
    """Runs `target(event)` in a daemon thread: the local server's stand-in for an async invoke."""

    def __init__(self, target: Callable[[dict[str, Any]], object]) -> None:
        self._target = target
        self.threads: list[threading.Thread] = []

    def launch(self, request: ObserveRequest) -> None:
        thread = threading.Thread(
            target=self._target, args=(request.to_event(),), name=f"observer-{request.call_id}", daemon=True
        )
        thread.start()
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        logger.info("observer started locally", extra={"call_id": request.call_id, "source": request.source})


class DisabledObserverLauncher:
    """`OBSERVER_LAUNCH=off`: calls go unobserved (the model then waits for the caller to speak)."""

    def launch(self, request: ObserveRequest) -> None:
        logger.info("observer disabled", extra={"call_id": request.call_id, "source": request.source})
