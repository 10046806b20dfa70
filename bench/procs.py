"""The local servers the benchmark talks to, each in its own process, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

from bench.scenarios import ROOT

OBSERVER_FUNCTION = "bench-observer"
REGION = "us-east-1"
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeProcess:
    """`bench.fake_proc` in a child process, driven over stdin/stdout."""

    def __init__(self, calls: list[str]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_proc", "--calls", *calls],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake OpenAI did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def command(self, line: str) -> Any:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.command("stats")
        return result

    def stop(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@contextlib.contextmanager
def fake_openai(calls: list[str]) -> Iterator[FakeProcess]:
    fake = FakeProcess(calls)
    try:
        yield fake
    finally:
        fake.stop()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server (Lambda without Docker, DynamoDB) with the observer function registered."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        request = urllib.request.Request(
            f"{url}/moto-api/config",
            data=json.dumps({"lambda": {"use_docker": False}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()
        _register_observer(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _register_observer(url: str) -> None:
    import boto3

    kwargs: dict[str, Any] = {"endpoint_url": url, "region_name": REGION}
    kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    role = boto3.client("iam", **kwargs).create_role(RoleName="bench", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("observer_app.py", "def handler(event, context):\n    return {}\n")
    boto3.client("lambda", **kwargs).create_function(
        FunctionName=OBSERVER_FUNCTION,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="observer_app.handler",
        Code={"ZipFile": code.getvalue()},
    )


class ConnectionCounter:
    """A TCP relay in front of an upstream that counts the connections it accepts."""

    def __init__(self, upstream_port: int) -> None:
        self.connections = 0
        self._upstream = upstream_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._server.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment like Lambda's: nothing from the caller's shell leaks in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **AWS_TEST_ENV}
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"  # as template.yaml's Globals set it
    env.update(extra)
    return env
