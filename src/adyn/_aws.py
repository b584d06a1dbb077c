"""Where, and as whom, adyn talks to DynamoDB: region, endpoints, credentials.

Worked out once, when the transport opens, from the Engine's arguments and an aiobotocore session
(the standard AWS environment and config files):

- region: `region_name`, else the session's (`AWS_DEFAULT_REGION`, the profile's `region`); a
  loopback endpoint with none defaults to us-east-1; otherwise `InvalidArgument` says how to set
  one.
- endpoints, for "dynamodb" and "dynamodbstreams": `endpoint_url` (both), else botocore's
  configured endpoints (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`,
  `AWS_ENDPOINT_URL`, the config file's `services` section and `endpoint_url`), else the
  regional endpoints with the partition's DNS suffix.
- credentials: explicit static keys win; otherwise the session's chain (environment, files,
  assumed roles, SSO, containers, IMDS). Refreshable credentials are refreshed well before they
  expire (botocore's advisory window, or halfway through a shorter life). For a loopback
  endpoint the metadata services (IMDS, containers) are not asked, and with no credentials
  found it gets placeholders: local servers accept any signature.

botocore reads files synchronously, so the resolution runs in a worker thread (the credential
chain on its own event loop there), and so does reloading the chain after the service answered
ExpiredTokenException. Refreshing temporary credentials before they expire runs on the caller's
loop, as aiobotocore's clients do it (network calls to STS, SSO or a metadata service).

While adyn resolves or refreshes credentials, botocore's and aiobotocore's records below WARNING
are dropped: at DEBUG they print signed requests and STS responses, which carry keys and tokens.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import inspect
import ipaddress
import logging
import math
import re
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from ._sigv4 import Credentials
from .errors import CREDENTIALS_UNAVAILABLE, DynamoError, InvalidArgument

__all__ = [
    "CREDENTIALS_UNAVAILABLE",
    "SERVICES",
    "CredentialSource",
    "Resolution",
    "dns_suffix",
    "host_header",
    "is_loopback",
    "regional_endpoint",
    "resolve",
    "validate_endpoint_url",
]

SERVICES = ("dynamodb", "dynamodbstreams")
SIGNING_NAME = "dynamodb"  # DynamoDB Streams signs as "dynamodb" too
TARGET_PREFIX = {"dynamodb": "DynamoDB_20120810", "dynamodbstreams": "DynamoDBStreams_20120810"}
_HOST_PREFIX = {"dynamodb": "dynamodb", "dynamodbstreams": "streams.dynamodb"}
LOCAL_REGION = "us-east-1"

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ADVISORY_REFRESH = 15 * 60.0  # botocore's advisory refresh window
_RETRY_FAILED_REFRESH = 5.0  # seconds before trying a failed refresh again

_REGION_HELP = (
    "no AWS region is configured: pass Engine(region_name=...), set AWS_DEFAULT_REGION, or set "
    "`region` in your profile in ~/.aws/config"
)
_CREDENTIALS_HELP = (
    "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, configure "
    "a profile (~/.aws/credentials, AWS_PROFILE), run where a role is available (ECS, EC2, "
    "Lambda), or pass Engine(aws_access_key_id=..., aws_secret_access_key=...)"
)

log = logging.getLogger("adyn.aws")

# ------------------------------------------------------------------ endpoints and regions


def validate_endpoint_url(url: object) -> str:
    """`url` if it is an http(s) URL with a host (and nothing DynamoDB does not take), else
    `InvalidArgument` saying what is wrong."""
    if not isinstance(url, str):
        raise InvalidArgument(
            f"endpoint_url must be a string such as 'http://localhost:8000', "
            f"not {type(url).__name__}"
        )
    text = url.strip()
    shown = repr(text) if "@" not in text else "(an URL with user info, not shown)"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InvalidArgument(f"endpoint_url {shown} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidArgument(
            f"endpoint_url {shown} must start with http:// or https:// "
            "(e.g. 'http://localhost:8000' or 'https://dynamodb.eu-west-1.amazonaws.com')"
        )
    host = parts.hostname
    if not host or not _valid_host(host):
        raise InvalidArgument(f"endpoint_url {shown} has no valid host name")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("endpoint_url must not contain user info (user:password@)")
    if parts.query or parts.fragment:
        raise InvalidArgument(f"endpoint_url {shown} must not have a query or a fragment")
    return text


def _valid_host(host: str) -> bool:
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return False
        return True
    return _HOST_NAME.fullmatch(host) is not None


def is_loopback(url: str | None) -> bool:
    """True for an endpoint on this machine (localhost, 127.0.0.0/8, ::1)."""
    if not url:
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


def host_header(url: str) -> str:
    """The Host header for `url`, as SigV4 signs it: lower case, the port only if not default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{parts.port}"
    return host


def validate_region(region: object) -> str:
    if not isinstance(region, str) or _REGION.fullmatch(region) is None:
        raise InvalidArgument(
            f"region_name {region!r} is not an AWS region name (e.g. 'eu-west-1')"
        )
    return region


def dns_suffix(region: str, partitions: Mapping[str, Any]) -> str:
    """The DNS suffix of the partition `region` belongs to (amazonaws.com, amazonaws.com.cn...).

    `partitions` is botocore's `partitions` data; a region no partition claims is in "aws".
    """
    entries = partitions.get("partitions", [])
    for entry in entries:
        if region in entry.get("regions", {}):
            return str(entry["outputs"]["dnsSuffix"])
    for entry in entries:
        pattern = entry.get("regionRegex")
        if pattern and re.match(pattern, region):
            return str(entry["outputs"]["dnsSuffix"])
    return "amazonaws.com"


def regional_endpoint(service: str, region: str, suffix: str) -> str:
    """The public endpoint of `service` ("dynamodb" or "dynamodbstreams") in `region`."""
    return f"https://{_HOST_PREFIX[service]}.{region}.{suffix}"


# ------------------------------------------------------------------ quiet botocore logs

_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("adyn_aws_quiet", default=False)
# Modules whose loggers speak during credential work (assumed roles, SSO, IMDS, containers).
# Their loggers are created here by name (a module's `getLogger(__name__)` later returns the
# same object, filter included): importing the modules instead would pull in botocore's and
# aiobotocore's HTTP stacks (urllib3, httpx) that adyn never uses, a quarter of its cold start.
_LOGGING_MODULES = (
    "botocore.auth",
    "botocore.client",
    "botocore.credentials",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.httpsession",
    "botocore.parsers",
    "botocore.regions",
    "botocore.retryhandler",
    "botocore.tokens",
    "botocore.utils",
    "aiobotocore.client",
    "aiobotocore.credentials",
    "aiobotocore.endpoint",
    "aiobotocore.hooks",
    "aiobotocore.httpsession",
    "aiobotocore.parsers",
    "aiobotocore.regions",
    "aiobotocore.retryhandler",
    "aiobotocore.tokens",
    "aiobotocore.utils",
)


class _QuietCredentialWork(logging.Filter):
    """Drops botocore's records below WARNING logged while adyn resolves credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _QUIET.get()


_FILTER = _QuietCredentialWork()


def _quiet_botocore() -> None:
    """Put the filter on every botocore and aiobotocore logger (idempotent, cheap)."""
    for module in _LOGGING_MODULES:
        logging.getLogger(module)
    manager = logging.root.manager
    for name in list(manager.loggerDict):
        if name.partition(".")[0] not in ("botocore", "aiobotocore"):
            continue
        logger = manager.loggerDict[name]
        if isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# ------------------------------------------------------------------ credentials


def _expiry_of(found: Any) -> float | None:
    expiry = getattr(found, "_expiry_time", None)  # botocore keeps no public accessor
    if isinstance(expiry, datetime.datetime):
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.UTC)
        return expiry.timestamp()
    return None


def _frozen(values: Any) -> Credentials:
    return Credentials(values.access_key, values.secret_key, values.token)


def _credentials_error(exc: Exception, when: str) -> Exception:
    from botocore.exceptions import (
        ConfigNotFound,
        ConfigParseError,
        InvalidConfigError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    config = (
        ConfigNotFound,
        ConfigParseError,
        InvalidConfigError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    if isinstance(exc, config):
        return InvalidArgument(f"AWS configuration problem {when}: {exc}")
    return DynamoError(
        CREDENTIALS_UNAVAILABLE, f"AWS credentials could not be {when}: {type(exc).__name__}: {exc}"
    )


# The providers that ask a metadata service over the network (EC2's IMDS, ECS/EKS containers).
_METADATA_PROVIDERS = frozenset({"iam-role", "container-role"})


async def _maybe(value: Any) -> Any:
    """An aiobotocore session answers with awaitables, botocore's own with values."""
    return await value if inspect.isawaitable(value) else value


async def _load_chain(session: Any, *, reload: bool, local: bool) -> tuple[Any, Credentials | None]:
    """botocore's credentials object and its current values (None, None when there are none).

    `session` is botocore's `Session` (the default: the lighter import) or an aiobotocore
    `AioSession` the caller passed. `reload`: run the session's chain again (the service said
    the token expired). `local`: the endpoint is on this machine and accepts any signature, so
    the metadata services are not asked (on a laptop or CI runner, that wait is the slowest part
    of opening).
    """
    preset = getattr(session, "_credentials", None)  # set by `session.set_credentials(...)`
    if reload or local:
        resolver = session.get_component("credential_provider")
        if local:
            providers = [p for p in resolver.providers if p.METHOD not in _METADATA_PROVIDERS]
            resolver = type(resolver)(providers=providers)
        found = (
            preset
            if preset is not None and not reload
            else await _maybe(resolver.load_credentials())
        )
    else:
        found = await _maybe(session.get_credentials())
    if found is None:
        return None, None
    values = await _maybe(found.get_frozen_credentials())
    if not values.access_key or not values.secret_key:
        return None, None
    return found, _frozen(values)


def _load_chain_in_thread(
    session: Any, reload: bool, local: bool
) -> tuple[Any, Credentials | None]:
    """Run the session's credential chain on a private event loop (it reads files)."""
    token = _QUIET.set(True)
    try:
        return asyncio.run(_load_chain(session, reload=reload, local=local))
    finally:
        _QUIET.reset(token)


def _frozen_in_thread(found: Any) -> Any:
    """botocore's (blocking) refresh of credentials, in a worker thread."""
    token = _QUIET.set(True)
    try:
        return found.get_frozen_credentials()
    finally:
        _QUIET.reset(token)


class CredentialSource:
    """The credentials to sign with now, refreshed before they expire.

    On the hot path a caller reads `credentials` when `now < refresh_at` (static credentials
    have `refresh_at = inf`, so that is one comparison) and otherwise awaits `refreshed(now)`.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        session: Any = None,
        found: Any = None,
        method: str = "explicit",
        local: bool = False,
    ) -> None:
        self.credentials = credentials
        self.method = method  # explicit, placeholder, or botocore's provider name
        self._session = session
        self._local = local
        self._found = found  # botocore's credentials object (None for explicit keys)
        self.expiry = _expiry_of(found)
        self.refresh_at = self._next_check(time.time())
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"<CredentialSource {self.method}>"

    @classmethod
    async def open(
        cls,
        session: Any,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        token: str | None = None,
        local: bool = False,
    ) -> CredentialSource:
        """Explicit keys, else the session's chain, else placeholders for a local server."""
        if access_key is not None and secret_key is not None:
            return cls(Credentials(access_key, secret_key, token))
        _quiet_botocore()
        try:
            found, credentials = await anyio.to_thread.run_sync(
                _load_chain_in_thread, session, False, local
            )
        except Exception as exc:
            raise _credentials_error(exc, "loaded") from exc
        if credentials is None:
            if local:
                return cls(Credentials("adyn-local", "adyn-local"), method="placeholder")
            raise InvalidArgument(_CREDENTIALS_HELP)
        method = getattr(found, "method", None)
        # Credentials set on the session itself (`session.set_credentials`) have no provider
        # method: there is no chain to load them from again.
        reload_from = session if method is not None else None
        return cls(
            credentials,
            session=reload_from,
            found=found,
            method=str(method or "session"),
            local=local,
        )

    def _next_check(self, now: float) -> float:
        if self.expiry is None:
            return math.inf
        remaining = self.expiry - now
        window = float(getattr(self._found, "_advisory_refresh_timeout", _ADVISORY_REFRESH))
        if remaining > window:
            return self.expiry - window
        # Short-lived, or inside botocore's window already: look again halfway to expiry.
        return now + max(0.5, remaining / 2)

    async def refreshed(self, now: float) -> Credentials:
        """The credentials to use at `now`, refreshing them first when their time has come."""
        async with self._lock:
            if now < self.refresh_at:  # another task refreshed them while this one waited
                return self.credentials
            _quiet_botocore()  # loggers created since the last credential work get it too
            token = _QUIET.set(True)
            try:
                if inspect.iscoroutinefunction(self._found.get_frozen_credentials):
                    values = await self._found.get_frozen_credentials()
                else:  # botocore's credentials refresh synchronously (files, STS, IMDS)
                    values = await anyio.to_thread.run_sync(_frozen_in_thread, self._found)
            except Exception as exc:
                return self._refresh_failed(exc, now)
            finally:
                _QUIET.reset(token)
            fresh = _frozen(values)
            if (fresh.access_key, fresh.secret_key, fresh.token) != (
                self.credentials.access_key,
                self.credentials.secret_key,
                self.credentials.token,
            ):
                self.credentials = fresh
            self.expiry = _expiry_of(self._found)
            self.refresh_at = self._next_check(time.time())
            return self.credentials

    def _refresh_failed(self, exc: Exception, now: float) -> Credentials:
        if self.expiry is not None and now < self.expiry - 1.0:
            # Still valid: keep signing with them and try again shortly.
            log.warning(
                "refreshing AWS credentials (%s) failed with %s; using the current ones, "
                "which expire in %.0f s",
                self.method,
                type(exc).__name__,
                self.expiry - now,
            )
            self.refresh_at = now + _RETRY_FAILED_REFRESH
            return self.credentials
        raise _credentials_error(exc, "refreshed") from exc

    async def expired(self, used: Credentials) -> None:
        """The service said the credentials `used` have expired: load new ones.

        Only the first of many calls that failed with the same credentials reloads. Explicit keys
        and placeholders cannot be reloaded; failures are left for the next call to meet.
        """
        if self._session is None:
            return
        async with self._lock:
            if self.credentials is not used:
                return
            _quiet_botocore()
            try:
                found, credentials = await anyio.to_thread.run_sync(
                    _load_chain_in_thread, self._session, True, self._local
                )
            except Exception as exc:
                log.warning("reloading expired AWS credentials failed with %s", type(exc).__name__)
                return
            if credentials is None:
                return
            self._found = found
            self.method = str(getattr(found, "method", None) or self.method)
            self.credentials = credentials
            self.expiry = _expiry_of(found)
            self.refresh_at = self._next_check(time.time())


# ------------------------------------------------------------------ the whole resolution


@dataclass(frozen=True)
class Resolution:
    """Everything the transport needs to know, worked out once."""

    region: str
    endpoints: Mapping[str, str]  # service -> endpoint URL
    credentials: CredentialSource
    ca_bundle: str | None  # a CA bundle file to verify TLS with (AWS_CA_BUNDLE, ca_bundle)
    proxies: Mapping[str, str | None]  # service -> proxy URL (HTTP(S)_PROXY, NO_PROXY)

    def __repr__(self) -> str:
        return f"<Resolution region={self.region} endpoints={dict(self.endpoints)}>"


@dataclass(frozen=True)
class _Settings:
    region: str
    endpoints: dict[str, str]
    ca_bundle: str | None
    proxies: dict[str, str | None]


def _configured_endpoint(session: Any, service: str) -> str | None:
    """botocore's configured endpoint for `service` (env vars, then the config file)."""
    if session.get_config_variable("ignore_configured_endpoint_urls"):
        return None
    try:
        from botocore.configprovider import ConfiguredEndpointProvider
    except ImportError:  # pragma: no cover - a botocore without configured endpoints
        import os

        names = {"dynamodb": "AWS_ENDPOINT_URL_DYNAMODB"}
        names["dynamodbstreams"] = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"
        return os.environ.get(names[service]) or os.environ.get("AWS_ENDPOINT_URL") or None
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config,
        scoped_config=session.get_scoped_config(),
        client_name=service,
    )
    url = provider.provide()
    return str(url) if url else None


def _proxy_for(url: str) -> str | None:
    if is_loopback(url):  # a proxy cannot reach this machine's local server
        return None
    scheme = urlsplit(url).scheme.lower()
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if not proxy:
        return None
    host = host_header(url)
    if urllib.request.proxy_bypass(host):
        return None
    return proxy


def _resolve_settings(session: Any, region_name: str | None, endpoint_url: str | None) -> _Settings:
    """Region, endpoints, CA bundle and proxies (reads botocore's config: a worker thread)."""
    from botocore.exceptions import BotoCoreError

    try:
        endpoints: dict[str, str] = {}
        for service in SERVICES:
            url = endpoint_url or _configured_endpoint(session, service)
            if url is not None:
                source = "endpoint_url" if endpoint_url else f"the configured {service} endpoint"
                try:
                    endpoints[service] = validate_endpoint_url(url)
                except InvalidArgument as exc:
                    raise InvalidArgument(f"{source}: {exc}") from None
        region = region_name or session.get_config_variable("region")
        ca_bundle = session.get_config_variable("ca_bundle")
        fips = session.get_config_variable("use_fips_endpoint")
        dualstack = session.get_config_variable("use_dualstack_endpoint")
    except BotoCoreError as exc:
        raise InvalidArgument(f"AWS configuration problem: {exc}") from exc
    if not region:
        if not is_loopback(endpoints.get("dynamodb")):
            raise InvalidArgument(_REGION_HELP)
        region = LOCAL_REGION
    region = validate_region(region)
    missing = [service for service in SERVICES if service not in endpoints]
    if missing:
        if fips or dualstack:
            raise InvalidArgument(
                "use_fips_endpoint / use_dualstack_endpoint are not built into adyn: pass "
                "the endpoint as Engine(endpoint_url=...) or set AWS_ENDPOINT_URL_DYNAMODB"
            )
        partitions = session.get_component("data_loader").load_data("partitions")
        suffix = dns_suffix(region, partitions)
        for service in missing:
            endpoints[service] = regional_endpoint(service, region, suffix)
    proxies = {service: _proxy_for(url) for service, url in endpoints.items()}
    return _Settings(region, endpoints, str(ca_bundle) if ca_bundle else None, proxies)


async def resolve(
    session: Any,
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
) -> Resolution:
    """Work out region, endpoints and credentials once, without blocking the event loop.

    `session` is an aiobotocore `AioSession`. Raises `InvalidArgument` for configuration that
    cannot work (no region, a bad endpoint, no credentials for a remote endpoint).
    """
    if region_name is not None:
        validate_region(region_name)
    if endpoint_url is not None:
        endpoint_url = validate_endpoint_url(endpoint_url)
    settings = await anyio.to_thread.run_sync(_resolve_settings, session, region_name, endpoint_url)
    credentials = await CredentialSource.open(
        session,
        access_key=aws_access_key_id,
        secret_key=aws_secret_access_key,
        token=aws_session_token,
        local=is_loopback(settings.endpoints["dynamodb"]),
    )
    return Resolution(
        settings.region, settings.endpoints, credentials, settings.ca_bundle, settings.proxies
    )
