"""Least privilege, read from template.yaml: each function may do what its code uses, on named resources.

SAM policy templates are expanded here from their published definitions (the few this project may
use); `LambdaInvokePolicy` is refused because it grants `function:<name>*` (a prefix, not one function).
The grants are also checked against the code's real calls: every AWS call shared/ makes, sent over HTTP
to moto with IAM authentication on, must pass with exactly the granted actions and use each of them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from moto.core.authorization import enable_iam_authentication

from local_api.routes import load_template
from shared.errors import ServiceError
from shared.hard_stop import HardStop
from shared.launcher import LambdaObserverLauncher, ObserveRequest
from shared.recordings import copy_recording, presigned_url
from shared.records import CallMeta, DynamoRecordStore, MemoryRecordStore, RecordBatch, turn
from shared.secrets import SecretStore
from shared.settings import Settings
from shared.store import DynamoCallStore, StoreUnavailable
from shared.upstream import OpenAIClient
from tests.calls_table import create_calls_table, create_records_table, dynamodb_client
from tests.moto_aws import Credentials, Wire, boto3_client, iam_user, register_function

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]

OBSERVER_ARN = (
    "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-observer:live"
)
API_KEY = ("secretsmanager:GetSecretValue", "ApiKeySecret|OpenAIApiKeySecretArn")
SIGNING = ("secretsmanager:GetSecretValue", "SigningSecret|SigningSecretArn")
TRUNK = ("secretsmanager:GetSecretValue", "OutboundTrunkSecret|OutboundTrunkSecretArn")
# Recordings (shared/recordings.py): the objects under recordings/ of the stack's bucket, and only they.
RECORDINGS = "${RecordingsBucket.Arn}/recordings/*"
PUT_RECORDING = ("s3:PutObject", RECORDINGS)
GET_RECORDING = ("s3:GetObject", RECORDINGS)
INVOKE_OBSERVER = ("lambda:InvokeFunction", OBSERVER_ARN)
# The hard stop (shared/hard_stop.py): schedules in the stack's own group, and only they: the one
# wildcard allowed, since each call's schedule is named after the call.
HANGUP_SCHEDULES = (
    "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${AWS::StackName}-hangups/*"
)
CREATE_SCHEDULE = ("scheduler:CreateSchedule", HANGUP_SCHEDULES)
DELETE_SCHEDULE = ("scheduler:DeleteSchedule", HANGUP_SCHEDULES)
PASS_SCHEDULER_ROLE = ("iam:PassRole", "HangupSchedulerRole.Arn")
# shared/store/: conditional single-item writes and reads on the calls table, nothing else.
CALLS_TABLE = {
    (f"dynamodb:{action}", "CallsTable.Arn") for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
}
# shared/limits.py: /rtc counts, reserves, refunds (conditional ADDs); /token counts, reads the minutes.
UPDATE_CALLS_TABLE = ("dynamodb:UpdateItem", "CallsTable.Arn")
READ_CALLS_TABLE = ("dynamodb:GetItem", "CallsTable.Arn")
TTL = int(time.time()) + 3600  # the counters' expiry in every_aws_call
# shared/records/: the observer only updates records (every write is one UpdateItem); the operator
# API only reads one (GetItem) or lists the newest-first index (Query).
RECORDS_INDEX = "${RecordsTable.Arn}/index/by_start"
WRITE_RECORDS = ("dynamodb:UpdateItem", "RecordsTable.Arn")
READ_RECORDS = {("dynamodb:GetItem", "RecordsTable.Arn"), ("dynamodb:Query", RECORDS_INDEX)}

# What each function's code does with AWS, and nothing more.
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "PageFunction": set(),
    "TokenFunction": {API_KEY, UPDATE_CALLS_TABLE, READ_CALLS_TABLE},
    "RtcFunction": {API_KEY, INVOKE_OBSERVER, UPDATE_CALLS_TABLE, CREATE_SCHEDULE, PASS_SCHEDULER_ROLE},
    "SipFunction": {API_KEY, SIGNING, INVOKE_OBSERVER, *CALLS_TABLE, CREATE_SCHEDULE, PASS_SCHEDULER_ROLE},
    "ObserverFunction": {
        API_KEY,
        INVOKE_OBSERVER,
        *CALLS_TABLE,
        DELETE_SCHEDULE,
        WRITE_RECORDS,
        PUT_RECORDING,
    },
    "HangupFunction": {API_KEY},
    # The operator API: records and their recordings (it signs the presigned URLs), and outbound calls:
    # the trunk, the counters (slots: GetItem/PutItem/UpdateItem; minutes: UpdateItem), the observer
    # and the hard stop.
    "CallsFunction": {
        *READ_RECORDS,
        GET_RECORDING,
        API_KEY,
        TRUNK,
        INVOKE_OBSERVER,
        *(CALLS_TABLE - {("dynamodb:DeleteItem", "CallsTable.Arn")}),
        CREATE_SCHEDULE,
        PASS_SCHEDULER_ROLE,
    },
}
# Checked by IAM when a call passes the role (CreateSchedule's Target.RoleArn), not an API call itself.
NOT_AN_API_CALL = {"iam:PassRole"}

# SAM policy templates that grant exactly one action on exactly the resource given.
SINGLE_RESOURCE_TEMPLATES = {
    "AWSSecretsManagerGetSecretValuePolicy": ("secretsmanager:GetSecretValue", "SecretArn")
}


def functions() -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties") or {}
        for name, resource in RESOURCES.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def resource_name(value: Any) -> str:
    """A pinned resource reference as a comparable string; fails on anything that could match more."""
    if isinstance(value, list):  # !If [condition, a, b]: both branches must be pinned
        condition, *branches = value
        assert condition in TEMPLATE["Conditions"], value
        return "|".join(resource_name(branch) for branch in branches)
    assert isinstance(value, str), value
    if value == HANGUP_SCHEDULES:  # every schedule in the stack's hangup group, none elsewhere
        group = RESOURCES["HangupScheduleGroup"]
        assert group["Type"] == "AWS::Scheduler::ScheduleGroup"
        assert value.endswith(f"schedule/{group['Properties']['Name']}/*"), value
        return value
    if value == RECORDINGS:  # the recordings prefix of the stack's one bucket
        assert RESOURCES["RecordingsBucket"]["Type"] == "AWS::S3::Bucket"
        return value
    assert "*" not in value, f"wildcard resource: {value}"
    if value == RECORDS_INDEX:  # one index of one table
        assert RESOURCES["RecordsTable"]["Type"] == "AWS::DynamoDB::Table"
        (index,) = RESOURCES["RecordsTable"]["Properties"]["GlobalSecondaryIndexes"]
        assert value.endswith(f"/index/{index['IndexName']}"), value
        return value
    if value.endswith(".Arn") and value.removesuffix(".Arn") in RESOURCES:  # !GetAtt X.Arn: one resource
        kind = RESOURCES[value.removesuffix(".Arn")]["Type"]
        assert kind in ("AWS::DynamoDB::Table", "AWS::IAM::Role"), value
    elif value in RESOURCES:
        assert RESOURCES[value]["Type"] == "AWS::SecretsManager::Secret", value
    elif value in PARAMETERS:
        pattern = PARAMETERS[value].get("AllowedPattern", "")
        # A full Secrets Manager ARN (with its random suffix); an empty value means "create one".
        assert pattern.startswith("^$|^arn:aws"), f"parameter {value} is not constrained to one ARN"
        assert "*" not in pattern.replace("]+", "").replace("]*", ""), pattern
    else:
        assert value.startswith("arn:${AWS::Partition}:"), f"not a pinned ARN: {value}"
    return value


def grants(props: dict[str, Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for policy in props.get("Policies") or []:
        assert isinstance(policy, dict), f"managed policy {policy!r}: grant only what is used"
        ((kind, body),) = policy.items()
        if kind == "Statement":
            for statement in body:
                assert statement["Effect"] == "Allow"
                assert "NotAction" not in statement
                assert "NotResource" not in statement
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                for action in actions:
                    assert "*" not in action, f"wildcard action: {action}"
                    found.update((action, resource_name(resource)) for resource in resources)
        else:
            assert kind in SINGLE_RESOURCE_TEMPLATES, f"policy template {kind} grants more than one resource"
            action, key = SINGLE_RESOURCE_TEMPLATES[kind]
            found.add((action, resource_name(body[key])))
    return found


def test_every_function_is_listed() -> None:
    assert set(functions()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_function_is_granted_exactly_what_it_uses(name: str) -> None:
    props = functions()[name]
    assert "Role" not in props, "a custom role bypasses these checks"
    assert grants(props) == EXPECTED[name]


def test_only_the_sip_function_can_read_the_signing_secret() -> None:
    readers = {name for name, props in functions().items() if SIGNING in grants(props)}
    assert readers == {"SipFunction"}


def test_only_the_calls_function_can_read_the_trunk() -> None:
    readers = {name for name, props in functions().items() if TRUNK in grants(props)}
    assert readers == {"CallsFunction"}


def test_the_recordings_bucket_is_private_encrypted_tls_only_and_expires() -> None:
    bucket = RESOURCES["RecordingsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    (expiry,) = bucket["LifecycleConfiguration"]["Rules"]
    # RecordRetentionDays, or 30 days (records' metadata retention) when it is 0.
    assert expiry["ExpirationInDays"] == ["KeepMetadataOnly", 30, "RecordRetentionDays"]
    policy = RESOURCES["RecordingsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == "RecordingsBucket"
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_scheduler_role_may_only_invoke_the_hangup_function() -> None:
    role = RESOURCES["HangupSchedulerRole"]
    assert role["Type"] == "AWS::IAM::Role"
    props = role["Properties"]
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    # Only Scheduler acting for this account (no confused deputy).
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "AWS::AccountId"}}
    assert "ManagedPolicyArns" not in props
    (policy,) = props["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
        "Allow",
        "lambda:InvokeFunction",
        "${HangupFunction.Arn}:live",  # its alias: what the schedules target
    )
    assert RESOURCES["HangupFunction"]["Type"] == "AWS::Serverless::Function"


def test_the_scheduler_role_is_passed_only_to_scheduler() -> None:
    for name in ("RtcFunction", "SipFunction"):
        passes = [
            statement
            for policy in functions()[name]["Policies"]
            if isinstance(policy, dict) and "Statement" in policy
            for statement in policy["Statement"]
            if statement["Action"] == "iam:PassRole"
        ]
        assert [p["Condition"] for p in passes] == [
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
        ], name


@pytest.mark.parametrize(
    "policy",
    [
        {"LambdaInvokePolicy": {"FunctionName": "x"}},
        {"DynamoDBCrudPolicy": {"TableName": "t"}},
        "AWSLambda_FullAccess",
        {"Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": OBSERVER_ARN}]},
        {"Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]},
        {
            "Statement": [
                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": OBSERVER_ARN + "*"}
            ]
        },
    ],
)
def test_the_check_catches_broad_grants(policy: Any) -> None:
    with pytest.raises(AssertionError):
        grants({"Policies": [policy]})


def test_every_route_is_throttled_by_parameters_with_sane_defaults() -> None:
    api = RESOURCES["HttpApi"]["Properties"]
    throttle = api["DefaultRouteSettings"]
    assert throttle == {
        "ThrottlingRateLimit": "ThrottlingRateLimit",
        "ThrottlingBurstLimit": "ThrottlingBurstLimit",
    }
    rate, burst = PARAMETERS["ThrottlingRateLimit"], PARAMETERS["ThrottlingBurstLimit"]
    assert 1 <= int(rate["Default"]) <= 100
    assert int(rate["Default"]) <= int(burst["Default"]) <= 200
    assert int(rate["MinValue"]) >= 1
    assert int(burst["MinValue"]) >= 1
    # Every HttpApi event belongs to this one API (a second, unthrottled API would bypass the limits).
    for name, props in functions().items():
        for event in (props.get("Events") or {}).values():
            assert event["Type"] == "HttpApi", name
            assert event["Properties"]["ApiId"] == "HttpApi", name


def test_allowed_origins_reach_cors_and_the_page_functions() -> None:
    cors = RESOURCES["HttpApi"]["Properties"]["CorsConfiguration"]
    condition, configured, otherwise = cors
    assert condition == "HasAllowedOrigins"
    assert otherwise == "AWS::NoValue"
    assert configured["AllowMethods"] == ["GET", "POST"]
    for name in ("RtcFunction", "TokenFunction"):
        assert functions()[name]["Environment"]["Variables"]["ALLOWED_ORIGINS"] == "AllowedOrigins"


# ----------------------------------------------------------------- the grants against the code's calls

MOTO_ACTION = {"lambda:InvokeFunction": "lambda:Invoke"}  # moto names the action after the operation


def granted_actions() -> set[str]:
    return {action for props in functions().values() for action, _ in grants(props)} - NOT_AN_API_CALL


def every_aws_call(endpoint: str, user: Credentials, wire: Wire) -> dict[str, Any]:
    """Drive every code path of shared/ that calls AWS: each call store operation, both secrets, a launch."""
    table = f"calls-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(endpoint), table)
    records_table = f"records-{uuid.uuid4().hex[:8]}"
    create_records_table(dynamodb_client(endpoint), records_table)
    secrets = boto3_client("secretsmanager", endpoint)
    key_arn = secrets.create_secret(Name=f"key-{uuid.uuid4().hex[:8]}", SecretString="sk-iam")["ARN"]
    trunk_arn = secrets.create_secret(Name=f"trunk-{uuid.uuid4().hex[:8]}", SecretString='{"username": "u"}')[
        "ARN"
    ]
    bucket = f"recordings-{uuid.uuid4().hex[:8]}"
    boto3_client("s3", endpoint).create_bucket(Bucket=bucket)
    signing_arn = secrets.create_secret(Name=f"sig-{uuid.uuid4().hex[:8]}", SecretString="whsec_iam")["ARN"]
    function = register_function(endpoint)
    scheduler = boto3_client("scheduler", endpoint)
    group = f"hangups-{uuid.uuid4().hex[:8]}"
    scheduler.create_schedule_group(Name=group)
    hard_stop_settings = Settings(
        hangup_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        scheduler_role_arn="arn:aws:iam::123456789012:role/hangup-scheduler",
        hangup_schedule_group=group,
    )

    def client(service: str) -> Any:
        """A boto3 client signing as `user`, configured as shared.aws's, one attempt (a refusal is final)."""
        return wire.watch(boto3_client(service, endpoint, user, max_attempts=1))

    outcomes: dict[str, Any] = {}
    with enable_iam_authentication():
        store = DynamoCallStore(table, client("dynamodb"))
        steps: dict[str, Callable[[], object]] = {
            "begin_delivery": lambda: (store.begin_delivery("wh_1"), store.begin_delivery("wh_1")),
            "mark_delivery": lambda: store.mark_delivery("wh_1", "accepted"),
            "abandon_delivery": lambda: store.abandon_delivery("wh_1"),
            "acquire_lease": lambda: store.acquire_lease("rtc_1", "gen0", until=time.time() + 60),
            "hand_over": lambda: store.hand_over("rtc_1", "gen0", "handoff:1", until=time.time() + 60),
            "claim": lambda: store.acquire_lease("rtc_1", "gen1", until=time.time() + 60, claim="handoff:1"),
            "mark_attached": lambda: store.mark_attached("rtc_1", "gen1"),
            "attached_owner": lambda: store.attached_owner("rtc_1"),
            "lease_owner": lambda: store.lease_owner("rtc_1"),
            "release_lease": lambda: store.release_lease("rtc_1", "gen1"),
            "end_lease": lambda: store.end_lease("rtc_1", "gen1"),
            "take_slot": lambda: store.take_slot("rtc_1", limit=2, until=time.time() + 60),
            "release_slot": lambda: store.release_slot("rtc_1"),
            "claim_tool_call": lambda: store.claim_tool_call("rtc_1", "call_1", "gen1"),
            "finish_tool_call": lambda: store.finish_tool_call("rtc_1", "call_1", "{}"),
            "count_call": lambda: [store.count_call("limit#c", limit=1, expires_at=TTL) for _ in range(2)],
            # The second reservation loses its first guess (ReturnValuesOnConditionCheckFailure) and retries.
            "reserve_seconds": lambda: [
                store.reserve_seconds("limit#m", want=60, limit=100, minimum=30, expires_at=TTL)
                for _ in range(2)
            ],
            "refund_seconds": lambda: store.refund_seconds("limit#m", 10),
            "seconds_used": lambda: store.seconds_used("limit#m"),
        }
        for name, step in steps.items():
            try:
                outcomes[name] = step()
            except StoreUnavailable as exc:
                outcomes[name] = exc
        records = DynamoRecordStore(records_table, client("dynamodb"))
        call = CallMeta("rtc_1", "sip", "+1555***0123", "", "default", "gpt-realtime", time.time())
        record_steps: dict[str, Callable[[], object]] = {
            "write_record": lambda: records.write(call, RecordBatch(turns=[turn("caller", "hi", 30)])),
            "get_record": lambda: records.get_call("rtc_1"),
            "list_records": lambda: records.list_calls(limit=5),
        }
        for name, step in record_steps.items():
            try:
                outcomes[name] = step()
            except ServiceError as exc:
                outcomes[name] = exc
        settings = Settings(
            openai_api_key_secret_arn=key_arn,
            openai_signing_secret_arn=signing_arn,
            outbound_trunk_secret_arn=trunk_arn,
        )
        secret_store = SecretStore(settings, client("secretsmanager"))
        outcomes["secrets"] = (
            secret_store.api_key(),
            secret_store.signing_secret(),
            secret_store.outbound_trunk(),
        )
        # The observer copies a recording (PutObject); the calls function presigns it, and the
        # operator's download is checked against the presigner's grants (GetObject).
        s3 = client("s3")
        outcomes["copy_recording"] = asyncio.run(
            copy_recording(
                CallMeta("live_1", "outbound", "", "", "default", "gpt-live-1.1", time.time()),
                client=_openai_answering(b"RIFF-iam"),
                records=MemoryRecordStore(),
                bucket=bucket,
                s3=s3,
                attempts=1,
            )
        )
        url = presigned_url("live_1", bucket, s3)
        LambdaObserverLauncher(function, client("lambda")).launch(
            ObserveRequest(call_id="rtc_1", source="sip")
        )
        hard_stop = HardStop(hard_stop_settings, client("scheduler"))
        outcomes["create_schedule"] = hard_stop.create(hard_stop.plan("rtc_1", time.time()))
    # Sent as the same user, but outside moto's IAM check: moto 5.2 miscomputes the SigV4 signature of
    # any request with a query string (DeleteSchedule sends ?groupName=...): SignatureDoesNotMatch even
    # with "*" granted. What is checked for it: the code sends it, and it is granted (the test below).
    hard_stop.cancel("rtc_1")
    # Also outside: moto's IAM check cannot read a presigned URL's query-string signature (it wants an
    # Authorization header). What is checked for it: the URL the grants' holder signed downloads.
    outcomes["presigned_get"] = httpx.get(url).content
    outcomes["schedule_left"] = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    return outcomes


IAM_ACTION = {"lambda:Invoke": "lambda:InvokeFunction"}  # the operation's IAM action, where it differs


def actions_sent(wire: Wire) -> set[str]:
    """The IAM action of each request that went out, as botocore sent it."""
    sent = {f"{exchange.service}:{exchange.operation}" for exchange in wire.exchanges}
    return {IAM_ACTION.get(action, action) for action in sent}


def _openai_answering(wav: bytes) -> OpenAIClient:
    settings = Settings(openai_api_key="sk-iam")
    return OpenAIClient(
        settings,
        SecretStore(settings),
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=wav)),
    )


# Sent by the operator's HTTP client on a URL the calls function signed, not by a boto3 client: the
# wire does not see it, its outcome shows it passed the presigner's grants.
PRESIGNED = {"s3:GetObject"}


def test_the_code_calls_exactly_the_granted_actions(moto_endpoint: str) -> None:
    granted = granted_actions()
    user = iam_user(moto_endpoint, sorted(MOTO_ACTION.get(a, a) for a in granted))
    wire = Wire()
    outcomes = every_aws_call(moto_endpoint, user, wire)
    assert not [name for name, outcome in outcomes.items() if isinstance(outcome, Exception)]
    assert outcomes["begin_delivery"] == ("new", "in_progress")
    assert outcomes["count_call"] == [1, None]
    assert outcomes["reserve_seconds"] == [(60, 60), (40, 100)]
    assert (outcomes["refund_seconds"], outcomes["seconds_used"]) == (90, 90)
    assert outcomes["secrets"] == ("sk-iam", "whsec_iam", '{"username": "u"}')
    assert (outcomes["copy_recording"], outcomes["presigned_get"]) == (True, b"RIFF-iam")
    assert [c.call_id for c in outcomes["list_records"].calls] == ["rtc_1"]
    assert [t.text for t in outcomes["get_record"].turns] == ["hi"]
    assert outcomes["create_schedule"] is True
    assert outcomes["schedule_left"] == []  # created, then deleted by the observer's cancel
    # Every request passed moto's signature and permission checks (a failed condition is DynamoDB's 400).
    assert {e.status for e in wire.exchanges} <= {200, 202, 400}
    assert actions_sent(wire) | PRESIGNED == granted


def test_a_missing_grant_is_refused(moto_endpoint: str) -> None:
    """The check above has teeth: without one granted action, the call that needs it is refused."""
    granted = granted_actions() - {"dynamodb:DeleteItem"}
    user = iam_user(moto_endpoint, sorted(MOTO_ACTION.get(a, a) for a in granted))
    wire = Wire()
    outcomes = every_aws_call(moto_endpoint, user, wire)
    refused = {name for name, outcome in outcomes.items() if isinstance(outcome, StoreUnavailable)}
    assert refused == {"abandon_delivery"}
    cause = outcomes["abandon_delivery"].__cause__
    assert isinstance(cause, ClientError)
    # moto answers an IAM refusal in XML, which DynamoDB's JSON parser reads as code "403".
    assert cause.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert [e.status for e in wire.exchanges if e.operation == "DeleteItem"] == [403]
