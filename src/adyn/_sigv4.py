"""AWS Signature Version 4 for DynamoDB's JSON POST requests.

Every DynamoDB (and DynamoDB Streams) call is a `POST /` whose headers are the same for every
call of an endpoint except three: the time (`X-Amz-Date`), the operation (`X-Amz-Target`) and the
session token. A `Signer` therefore renders the canonical request once per operation, split
around the time and the token, and a call costs one SHA-256 of the body, one of the canonical
request and one HMAC. The signing key is derived once per (secret, date, region, service).

Nothing here logs, and neither `Credentials` nor `Signer` shows a secret in its repr.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote

from multidict import CIMultiDict

__all__ = ["ALGORITHM", "Credentials", "Signer", "signing_key"]

ALGORITHM = "AWS4-HMAC-SHA256"

# Cannot occur in a header value: marks where the per-call values go in a rendered template.
_DATE_MARK = "\x00date\x00"
_TOKEN_MARK = "\x00token\x00"
_DYNAMIC = frozenset(
    {"host", "x-amz-date", "x-amz-security-token", "x-amz-target", "authorization"}
)
_sha256 = hashlib.sha256
_hmac_digest = hmac.digest


class Credentials:
    """One immutable set of AWS credentials (the repr never shows them)."""

    __slots__ = ("access_key", "canonical_token", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token or None
        # The token as it appears in the canonical request (trimmed, inner spaces collapsed).
        self.canonical_token = _trim_all(token) if token else None

    def __repr__(self) -> str:
        kind = "temporary" if self.token else "static"
        return f"<Credentials {kind}, hidden>"


@functools.lru_cache(maxsize=32)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key for one day, region and service (derived once, then cached)."""
    key = _hmac_digest(("AWS4" + secret_key).encode("utf-8"), date.encode("utf-8"), "sha256")
    key = _hmac_digest(key, region.encode("utf-8"), "sha256")
    key = _hmac_digest(key, service.encode("utf-8"), "sha256")
    return _hmac_digest(key, b"aws4_request", "sha256")


def _trim_all(value: str) -> str:
    return " ".join(value.split())


class _Template:
    """The canonical request and headers of one operation, with holes for time and token."""

    __slots__ = ("before_date", "headers", "plain_rest", "token_middle", "token_rest")

    def __init__(
        self,
        before_date: str,
        plain_rest: str,
        token_middle: str,
        token_rest: str,
        headers: CIMultiDict[str],
    ) -> None:
        self.before_date = before_date
        self.plain_rest = plain_rest  # after the date, without a token
        self.token_middle = token_middle  # between the date and the token
        self.token_rest = token_rest  # after the token
        self.headers = headers


class Signer:
    """Signs POST requests for one endpoint, region and service.

    - `host`: the Host header exactly as sent (lower case; the port only when not the default);
    - `path`: the request path ("/" for DynamoDB);
    - `headers`: headers sent and signed with every call (e.g. Content-Type);
    - `target_prefix`: when given, each call's `X-Amz-Target` is `<target_prefix>.<operation>`;
    - `unsigned_headers`: headers sent with every call but left out of the signature (those a
      proxy may change, such as User-Agent).

    `sign(credentials, body, operation)` returns the headers to send (Host included).
    """

    __slots__ = (
        "_auth",
        "_auth_for",
        "_date",
        "_headers",
        "_host",
        "_path",
        "_region",
        "_scope",
        "_scope_line",
        "_second",
        "_service",
        "_sign_prefix",
        "_target_prefix",
        "_templates",
        "_timestamp",
        "_unsigned",
    )

    def __init__(
        self,
        *,
        host: str,
        region: str,
        service: str,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        target_prefix: str | None = None,
        unsigned_headers: Mapping[str, str] | None = None,
    ) -> None:
        fixed = dict(headers or {})
        unsigned = dict(unsigned_headers or {})
        clash = sorted(name for name in [*fixed, *unsigned] if name.lower() in _DYNAMIC)
        if clash:
            raise ValueError(f"the signer sets these headers itself: {', '.join(clash)}")
        self._host = host
        self._region = region
        self._service = service
        self._path = quote(_normalize_path(path), safe="/~")
        self._headers = fixed
        self._unsigned = unsigned
        self._target_prefix = target_prefix
        self._templates: dict[str, _Template] = {}
        self._second = -1
        self._timestamp = ""
        self._date = ""
        self._scope = ""
        self._scope_line = "\n\n"
        self._sign_prefix = ALGORITHM + "\n"
        self._auth_for: tuple[Credentials, str] | None = None
        self._auth = ("", b"")

    def __repr__(self) -> str:
        return f"<Signer {self._service} {self._region} {self._host}>"

    def sign(
        self, credentials: Credentials, body: bytes, operation: str = "", now: float | None = None
    ) -> CIMultiDict[str]:
        """The headers that sign `body` for `operation` at `now` (epoch seconds; default: now).

        A `CIMultiDict`, the type aiohttp keeps headers in: it takes them without converting
        them (about 1.5 us less CPU per request than a dict).
        """
        timestamp, authorization = self.authorize(credentials, body, operation, now)
        headers = self._templates[operation].headers.copy()
        headers["X-Amz-Date"] = timestamp
        headers["Authorization"] = authorization
        if credentials.token is not None:
            headers["X-Amz-Security-Token"] = credentials.token
        return headers

    def authorize(
        self, credentials: Credentials, body: bytes, operation: str = "", now: float | None = None
    ) -> tuple[str, str]:
        """The `X-Amz-Date` and `Authorization` values that sign `body` for `operation` at
        `now`; the other headers are `fixed_headers(operation)` (and the session token)."""
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._tick(second)
        template = self._templates.get(operation)
        if template is None:
            template = self._template(operation)
        timestamp = self._timestamp
        payload_hash = _sha256(body).hexdigest()
        token = credentials.canonical_token
        if token is None:
            canonical = template.before_date + timestamp + template.plain_rest + payload_hash
        else:
            canonical = (
                template.before_date
                + timestamp
                + template.token_middle
                + token
                + template.token_rest
                + payload_hash
            )
        if self._auth_for is None or self._auth_for[0] is not credentials:
            self._credentials_changed(credentials)
        prefix, key = self._auth
        canonical_hash = _sha256(canonical.encode()).hexdigest()
        string_to_sign = self._sign_prefix + timestamp + self._scope_line + canonical_hash
        return timestamp, prefix + _hmac_digest(key, string_to_sign.encode(), "sha256").hex()

    def fixed_headers(self, operation: str = "") -> dict[str, str]:
        """The headers sent with every call of `operation` (Host included), besides the ones
        `authorize` gives and the session token."""
        template = self._templates.get(operation)
        if template is None:
            template = self._template(operation)
        return dict(template.headers)

    # ------------------------------------------------------------------ cached parts

    def _tick(self, second: int) -> None:
        timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        self._second = second
        self._timestamp = timestamp
        date = timestamp[:8]
        if date != self._date:
            self._date = date
            self._scope = f"{date}/{self._region}/{self._service}/aws4_request"
            self._scope_line = f"\n{self._scope}\n"
            self._auth_for = None  # the key and the credential scope change with the day

    def _credentials_changed(self, credentials: Credentials) -> None:
        key = signing_key(credentials.secret_key, self._date, self._region, self._service)
        signed = self._signed_headers(credentials.token is not None)
        prefix = (
            f"{ALGORITHM} Credential={credentials.access_key}/{self._scope}, "
            f"SignedHeaders={signed}, Signature="
        )
        self._auth = (prefix, key)
        self._auth_for = (credentials, self._date)

    def _names(self, operation: str, with_token: bool) -> dict[str, str]:
        names = {name.lower(): _trim_all(value) for name, value in self._headers.items()}
        names["host"] = self._host
        names["x-amz-date"] = _DATE_MARK
        if with_token:
            names["x-amz-security-token"] = _TOKEN_MARK
        if self._target_prefix is not None:
            names["x-amz-target"] = f"{self._target_prefix}.{operation}"
        return names

    def _signed_headers(self, with_token: bool) -> str:
        return ";".join(sorted(self._names("", with_token)))

    def _render(self, operation: str, with_token: bool) -> str:
        names = self._names(operation, with_token)
        lines = "".join(f"{name}:{names[name]}\n" for name in sorted(names))
        signed = ";".join(sorted(names))
        return f"POST\n{self._path}\n\n{lines}\n{signed}\n"

    def _template(self, operation: str) -> _Template:
        before_date, plain_rest = self._render(operation, False).split(_DATE_MARK)
        _, token_part = self._render(operation, True).split(_DATE_MARK)
        token_middle, token_rest = token_part.split(_TOKEN_MARK)
        headers = CIMultiDict({"Host": self._host, **self._headers, **self._unsigned})
        if self._target_prefix is not None:
            headers["X-Amz-Target"] = f"{self._target_prefix}.{operation}"
        template = _Template(before_date, plain_rest, token_middle, token_rest, headers)
        self._templates[operation] = template
        return template


def _normalize_path(path: str) -> str:
    """The path with empty and dot segments removed, as SigV4 (for non-S3 services) asks."""
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized
