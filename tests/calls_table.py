"""The calls table as template.yaml declares it (`CallsTable`), created on a moto server for tests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref, !Sub, ...) as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def table_properties() -> dict[str, Any]:
    template = yaml.load(TEMPLATE.read_text(), Loader=_Loader)  # noqa: S506 - a safe loader subclass
    properties: dict[str, Any] = template["Resources"]["CallsTable"]["Properties"]
    return properties


def create_calls_table(client: Any, name: str) -> None:
    """Create the table with the template's key schema, billing mode and TTL attribute."""
    props = table_properties()
    client.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props["BillingMode"],
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])


class SerialMotoServer:
    """moto's server app (what `moto_server` serves) on 127.0.0.1, answering one request at a time.

    Real DynamoDB applies each conditional write atomically. moto does not lock its backend, so under
    a threaded server two concurrent conditional writes can both pass their condition, which real
    DynamoDB never allows. Serving one request at a time (HTTP/1.0, no keep-alive) restores that
    guarantee without weakening what the tests check: every store operation is a single request.
    """

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class Handler(MotoRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nobody holds the server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-serial", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> SerialMotoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def dynamodb_client(endpoint: str) -> Any:
    """A boto3 DynamoDB client (table admin in tests) for the moto server at `endpoint`, dummy credentials."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_records_table(client: Any, name: str) -> None:
    """The call records table as template.yaml declares it (`RecordsTable`): key, index, TTL."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_Loader)  # noqa: S506 - a safe loader subclass
    props = template["Resources"]["RecordsTable"]["Properties"]
    client.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode=props["BillingMode"],
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
