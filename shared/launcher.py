"""Starts the observer for a call: an async Lambda invoke in AWS, a background thread locally."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.errors import ServiceError
from shared.log import logger
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.aws import AsyncInvoker

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
    """Invokes the observer function asynchronously (`InvocationType="Event"`): returns at once.

    The client (`shared.aws`, on httpx) is opened at the first launch: a few ms plus httpx-auth's
    ~13 ms import when it is the process's first AWS client (the TLS context is shared, `shared.tls`).
    boto3 cost ~0.25 s, which a background thread used to hide behind the OpenAI call.
    """

    def __init__(self, function_name: str, lambda_client: AsyncInvoker | None = None) -> None:
        if not function_name:
            raise ServiceError("Server misconfigured: OBSERVER_FUNCTION_NAME is not set")
        self.function_name = function_name
        self._client = lambda_client

    def prepare(self) -> None:
        """Build the Lambda client now (SnapStart init): no request is sent."""
        if self._client is None:
            from shared import aws

            self._client = aws.client("lambda", get_settings())

    def launch(self, request: ObserveRequest) -> None:
        if self._client is None:
            from shared import aws  # only the functions that launch observers load the AWS client

            self._client = aws.client("lambda", get_settings())
        status = self._client.invoke_async(self.function_name, json.dumps(request.to_event()).encode())
        if status != 202:
            raise ServiceError(f"Observer launch failed (status {status})")
        logger.info("observer launched", extra={"call_id": request.call_id, "source": request.source})


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
