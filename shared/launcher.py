"""Starts the observer for a call: an async Lambda invoke in AWS, a background thread locally."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared import aws
from shared.errors import ServiceError
from shared.log import logger

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# "outbound": a phone call the stack placed (POST /calls, shared/outbound.py), always GPT-Live over SIP.
CallSource = Literal["webrtc", "sip", "api", "outbound"]


@dataclass(frozen=True)
class ObserveRequest:
    """The async event the observer worker receives (`events/observer_async.json`).

    `call_started_at` (unix s) anchors the call's length limit across hand-offs; `generation` counts
    hand-offs (0 = the first observer, the only one that greets the caller). A successor gets every
    field but `generation` and `requested_at` unchanged.
    """

    call_id: str
    source: CallSource
    requested_at: float = field(default_factory=time.time)
    call_started_at: float | None = None
    generation: int = 0
    # The agent profile the call was routed to (shared/agents.py), and the caller and dialed numbers
    # already masked (`+1555***0123`, shared/policy.py mask_number): no full number is ever passed on.
    agent: str = "default"
    caller: str = ""
    dialed: str = ""
    # The call's granted length in seconds (the daily minutes budget may cut it below MAX_CALL_SECONDS);
    # None = MAX_CALL_SECONDS.
    max_seconds: int | None = None
    # The UTC day (YYYY-MM-DD) whose minutes budget holds `max_seconds` as a reservation (shared/limits.py):
    # the observer ending the call gives back what it did not use. None = nothing was reserved.
    minutes_day: str | None = None
    # An outbound call's operator metadata (POST /calls `metadata`: a few short strings), for its record.
    metadata: dict[str, str] | None = None

    def to_event(self) -> dict[str, Any]:
        return asdict(self)


class ObserverLauncher(Protocol):
    def prepare(self) -> None:
        """Get ready to launch (called before the request waits on OpenAI): must return at once."""
        ...

    def launch(self, request: ObserveRequest) -> None: ...


class LambdaObserverLauncher:
    """Invokes the observer function asynchronously (`InvocationType="Event"`): returns at once.

    The boto3 Lambda client costs ~125 ms of import and ~60 ms to create in a fresh container:
    `prepare()` starts that in a background thread before the route awaits OpenAI, so `launch()`
    finds it built (or waits only for what is left).
    """

    def __init__(self, function_name: str, lambda_client: LambdaClient | None = None) -> None:
        if not function_name:
            raise ServiceError("Server misconfigured: OBSERVER_FUNCTION_NAME is not set")
        self.function_name = function_name
        self._client = lambda_client

    def prepare(self) -> None:
        if self._client is None:
            aws.prepare("lambda")

    def launch(self, request: ObserveRequest) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client or aws.client("lambda")
        try:
            answer = client.invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=json.dumps(request.to_event()).encode(),
            )
        except ClientError as exc:
            raise ServiceError(f"Observer launch failed ({aws.error_code(exc) or 'error'})") from exc
        except BotoCoreError as exc:
            raise ServiceError(f"Observer launch failed ({type(exc).__name__})") from exc
        if answer["StatusCode"] != 202:
            raise ServiceError(f"Observer launch failed (status {answer['StatusCode']})")
        logger.info("observer launched", extra={"call_id": request.call_id, "source": request.source})


class LocalObserverLauncher:
    """Runs `target(event)` in a daemon thread: the local server's stand-in for an async invoke."""

    def __init__(self, target: Callable[[dict[str, Any]], object]) -> None:
        self._target = target
        self.threads: list[threading.Thread] = []

    def prepare(self) -> None:
        pass

    def launch(self, request: ObserveRequest) -> None:
        thread = threading.Thread(
            target=self._target, args=(request.to_event(),), name=f"observer-{request.call_id}", daemon=True
        )
        thread.start()
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        logger.info("observer started locally", extra={"call_id": request.call_id, "source": request.source})


class DisabledObserverLauncher:
    """`OBSERVER_LAUNCH=off`: calls go unobserved (the model then waits for the caller to speak)."""

    def prepare(self) -> None:
        pass

    def launch(self, request: ObserveRequest) -> None:
        logger.info("observer disabled", extra={"call_id": request.call_id, "source": request.source})
