"""adyn's SigV4 signer: AWS's published test-suite vectors, and byte-for-byte botocore's.

The vectors (aws-sig-v4-test-suite: service "service", us-east-1, 2015-08-30T12:36:00Z,
AKIDEXAMPLE) that apply to a POST to "/" without a query: post-vanilla, post-header-key-case,
post-x-www-form-urlencoded and post-sts-header-before (the token signed as a header, which is
what DynamoDB and botocore do).
"""

from __future__ import annotations

import base64
import calendar
import datetime
import hashlib
import string
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from adyn._aws import host_header
from adyn._sigv4 import Credentials, Signer, signing_key

SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = calendar.timegm((2015, 8, 30, 12, 36, 0))
SUITE_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPf"
    "IeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7"
    "WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlz"
    "m8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


def suite_signer(**kwargs: object) -> Signer:
    return Signer(host="example.amazonaws.com", region="us-east-1", service="service", **kwargs)  # type: ignore[arg-type]


def authorization(signed: str, signature: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}"


@pytest.mark.parametrize(
    ("name", "headers", "body", "token", "expected"),
    [
        (
            "post-vanilla",
            {},
            b"",
            None,
            authorization(
                "host;x-amz-date",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
        ),
        (
            "post-header-key-case",
            {"My-Header1": "value1"},
            b"",
            None,
            authorization(
                "host;my-header1;x-amz-date",
                "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
            ),
        ),
        (
            "post-x-www-form-urlencoded",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Param1=value1",
            None,
            authorization(
                "content-type;host;x-amz-date",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            ),
        ),
        (
            "post-sts-header-before",
            {},
            b"",
            SUITE_TOKEN,
            authorization(
                "host;x-amz-date;x-amz-security-token",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            ),
        ),
    ],
)
def test_aws_test_suite_vectors(
    name: str, headers: dict[str, str], body: bytes, token: str | None, expected: str
) -> None:
    signer = suite_signer(headers=headers)
    credentials = Credentials(SUITE_KEY, SUITE_SECRET, token)
    signed = signer.sign(credentials, body, now=SUITE_TIME)
    assert signed["Authorization"] == expected, name
    assert signed["X-Amz-Date"] == "20150830T123600Z"
    assert signed["Host"] == "example.amazonaws.com"
    for header, value in headers.items():
        assert signed[header] == value
    if token is None:
        assert "X-Amz-Security-Token" not in signed
    else:
        assert signed["X-Amz-Security-Token"] == token


def test_signing_key_matches_the_documented_derivation() -> None:
    # AWS's documentation example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215,
    # us-east-1, iam.
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_the_token_change_and_the_day_change_are_seen() -> None:
    signer = suite_signer()
    plain = Credentials(SUITE_KEY, SUITE_SECRET)
    with_token = Credentials(SUITE_KEY, SUITE_SECRET, SUITE_TOKEN)
    first = signer.sign(plain, b"", now=SUITE_TIME)["Authorization"]
    assert "x-amz-security-token" in signer.sign(with_token, b"", now=SUITE_TIME)["Authorization"]
    assert signer.sign(plain, b"", now=SUITE_TIME)["Authorization"] == first
    next_day = signer.sign(plain, b"", now=SUITE_TIME + 86400)["Authorization"]
    assert "/20150831/us-east-1/service/aws4_request" in next_day


def test_credentials_repr_hides_everything() -> None:
    credentials = Credentials("AKIAREPRCHECK", "secret-repr-check", "token-repr-check")
    shown = repr(credentials) + repr(suite_signer())
    for secret in ("AKIAREPRCHECK", "secret-repr-check", "token-repr-check"):
        assert secret not in shown


def test_the_signer_refuses_to_be_handed_headers_it_sets() -> None:
    with pytest.raises(ValueError, match="X-Amz-Date"):
        suite_signer(headers={"X-Amz-Date": "x"})


# ------------------------------------------------------------------ against botocore

_KEY_CHARS = string.ascii_uppercase + string.digits
_SECRET_CHARS = string.ascii_letters + string.digits + "+/"
_TOKEN_CHARS = string.ascii_letters + string.digits + "+/="

host_names = st.one_of(
    st.sampled_from(
        [
            "dynamodb.us-east-1.amazonaws.com",
            "streams.dynamodb.cn-north-1.amazonaws.com.cn",
            "localhost",
            "127.0.0.1",
            "[::1]",
            "DynamoDB.EU-West-1.AmazonAWS.com",
        ]
    ),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
)
ports = st.one_of(st.none(), st.sampled_from([80, 443, 8000]), st.integers(1, 65535))
regions = st.from_regex(r"[a-z]{2}(-[a-z]{3,9})?-[a-z]{4,9}-[1-9]", fullmatch=True)
operations = st.sampled_from(
    ["GetItem", "PutItem", "Query", "BatchWriteItem", "TransactWriteItems", "GetRecords"]
)
targets = st.sampled_from(["DynamoDB_20120810", "DynamoDBStreams_20120810"])
bodies = st.one_of(
    st.binary(max_size=2048),
    st.builds(
        lambda text: text.encode("utf-8"),
        st.text(max_size=400),
    ),
)
moments = st.integers(min_value=0, max_value=4102444800)  # 1970 .. 2100


@settings(max_examples=300, deadline=None)
@given(
    host_name=host_names,
    port=ports,
    scheme=st.sampled_from(["http", "https"]),
    region=regions,
    operation=operations,
    target=targets,
    body=bodies,
    moment=moments,
    access_key=st.text(_KEY_CHARS, min_size=16, max_size=20),
    secret_key=st.text(_SECRET_CHARS, min_size=30, max_size=40),
    token=st.one_of(st.none(), st.text(_TOKEN_CHARS, min_size=1, max_size=600)),
    path=st.sampled_from(["/", "/dynamodb", "/a/b/"]),
)
def test_byte_for_byte_botocores_sigv4(
    host_name: str,
    port: int | None,
    scheme: str,
    region: str,
    operation: str,
    target: str,
    body: bytes,
    moment: int,
    access_key: str,
    secret_key: str,
    token: str | None,
    path: str,
) -> None:
    url = f"{scheme}://{host_name}{'' if port is None else f':{port}'}{path}"
    content_type = {"Content-Type": "application/x-amz-json-1.0"}
    signer = Signer(
        host=host_header(url),
        region=region,
        service="dynamodb",
        path=path,
        headers=content_type,
        target_prefix=target,
        unsigned_headers={"User-Agent": "adyn/test"},
    )
    ours = signer.sign(Credentials(access_key, secret_key, token), body, operation, moment)

    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={**content_type, "X-Amz-Target": f"{target}.{operation}"},
    )
    when = datetime.datetime.fromtimestamp(moment, datetime.UTC).replace(tzinfo=None)
    auth = SigV4Auth(BotocoreCredentials(access_key, secret_key, token), "dynamodb", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        auth.add_auth(request)

    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")
    assert ours["X-Amz-Target"] == f"{target}.{operation}"
    assert ours["User-Agent"] == "adyn/test"
    # The Host header adyn sends is the one botocore signed (lower case, no default port).
    expected_host = host_name.lower()
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        expected_host += f":{port}"
    assert ours["Host"] == expected_host


def test_the_payload_hash_is_of_the_exact_body() -> None:
    # Two bodies differing in one byte sign differently (the hash covers the body itself).
    signer = suite_signer(headers={"Content-Type": "application/x-amz-json-1.0"})
    credentials = Credentials(SUITE_KEY, SUITE_SECRET)
    body = base64.b64encode(hashlib.sha256(b"x").digest())
    one = signer.sign(credentials, body, now=SUITE_TIME)["Authorization"]
    other = signer.sign(credentials, body[:-1] + b"A", now=SUITE_TIME)["Authorization"]
    assert one != other
