"""Recordings in S3-compatible object storage (AWS S3, MinIO, SeaweedFS, ...): listing, HEAD, small
reads, presigned URLs and resumable, verified downloads, over one aiobotocore client per process.

Transient failures (connection refused or reset, a body cut off mid-stream, timeouts, 5xx,
SlowDown) are retried here with doubling waits capped at ``retry_max_s``, for at most
``outage_wait_s`` without progress; then :class:`Unavailable` names ``s3://bucket/key`` and the last
error. botocore's own retries are off: they do not cover a body that breaks mid-stream, and a
download must go on from the byte it reached (``Range``), not start over.

Errors name the object, never the credentials: a missing object or bucket is :class:`NotFound`,
a refused key or signature :class:`PermissionDenied`, an object that changed since it was listed
(another size or ETag) :class:`FailedPrecondition`.

Example:
    >>> config = S3Config(endpoint_url="http://127.0.0.1:8333", access_key_id="ak", secret_access_key="sk")
    >>> "sk" in repr(config)
    False
    >>> url = ObjectStore(config).presigned_url(("rec", "site/a.mp4"), expires_s=60)
    >>> url.startswith("http://127.0.0.1:8333/rec/site/a.mp4?")
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import aiohttp
import botocore.exceptions
import botocore.session
from aiobotocore.session import get_session
from botocore.config import Config

from spoton_inference.domain.environment import RemoteObject
from spoton_inference.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SpotOnError,
    Unavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# A download is written as <dest>.part and renamed into place once verified: no reader ever
# sees half a recording, and one left by a crash is recognisable (the recording cache removes it).
PART_SUFFIX = ".part"
# Bytes read per body read, and gathered before one write (off the event loop, with the MD5).
CHUNK_BYTES = 1 << 20
# The first wait after a transient error; it doubles up to S3Config.retry_max_s.
FIRST_RETRY_S = 0.2
CONNECT_TIMEOUT_S = 5.0
# Longest silence on an open connection (headers or body) before it counts as broken.
READ_TIMEOUT_S = 30.0
MAX_POOL_CONNECTIONS = 16
DEFAULT_URL_TTL_S = 3600
MAX_ERROR_CHARS = 300
CREDENTIALS_HINT = "check SPOTON_S3_ACCESS_KEY_ID and SPOTON_S3_SECRET_ACCESS_KEY, and what that key may access"

_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
        "Forbidden",
        "403",
    }
)
# The object is not the one that was listed: If-Match failed, or a Range lies past its new end.
_CHANGED = frozenset({"PreconditionFailed", "412", "InvalidRange", "416"})
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
    }
)
# Network failures worth another try. Not OSError as a whole: a full disk is not transient.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    botocore.exceptions.HTTPClientError,  # a body cut off, a connection closed, a read timeout
    botocore.exceptions.ConnectionError,  # refused, connect timeout (SSLError is excluded below)
    botocore.exceptions.IncompleteReadError,
    aiohttp.ClientError,  # ClientPayloadError: the server went away mid-body
    ConnectionError,
    TimeoutError,
)


class _S3Settings(Protocol):
    """The fields of spoton_inference.settings.Settings this reads (files/ may not import it)."""

    s3_endpoint_url: str
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: str
    s3_retry_max_s: float
    s3_outage_wait_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class S3Config:
    """Where object storage is and how long to wait for it. Empty keys: botocore's default chain
    (AWS_* variables, an instance or pod role); an empty endpoint: AWS itself, in ``region``."""

    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = dataclasses.field(default="", repr=False)
    secret_access_key: str = dataclasses.field(default="", repr=False)
    retry_max_s: float = 10.0
    outage_wait_s: float = 120.0
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: _S3Settings) -> S3Config:
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            retry_max_s=settings.s3_retry_max_s,
            outage_wait_s=settings.s3_outage_wait_s,
        )

    def botocore_config(self) -> Config:
        return Config(
            signature_version="s3v4",
            # Path style for a custom endpoint (MinIO on a bare host name or IP has no virtual
            # hosts); AWS picks virtual hosts where the bucket name allows.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            retries={"total_max_attempts": 1},  # retried here, with resume
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
            max_pool_connections=MAX_POOL_CONNECTIONS,
            # Checksums only where S3 requires them: older S3 clones reject or omit the newer
            # flexible checksums, and downloads are verified against the ETag here.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    def client_args(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url or None,
            "region_name": self.region,
            "aws_access_key_id": self.access_key_id or None,
            "aws_secret_access_key": self.secret_access_key or None,
            "config": self.botocore_config(),
        }


@dataclasses.dataclass(slots=True)
class TransferStats:
    """Counters of one store, for tests and metrics."""

    # GETs of object bodies (downloads, their resumes, small reads).
    body_requests: int = 0
    bytes_received: int = 0
    # Transient errors that were retried.
    retries: int = 0


class ObjectStore:
    """One S3 endpoint and its credentials; the client is made on first use and closed by
    :meth:`close`."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.stats = TransferStats()
        self._client: Any = None
        self._exit = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()
        self._signer: Any = None

    @classmethod
    def from_settings(cls, settings: _S3Settings) -> ObjectStore:
        return cls(S3Config.from_settings(settings))

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None
        if self._signer is not None:
            self._signer.close()
            self._signer = None

    async def list(self, bucket: str, prefix: str) -> list[RemoteObject]:
        """Every object whose key starts with ``prefix``, across all pages of the listing."""
        found: list[RemoteObject] = []
        token = ""
        while True:
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            page = await self._call(_uri(bucket, prefix), lambda s3, args=args: s3.list_objects_v2(**args))
            for item in page.get("Contents", []):
                found.append(RemoteObject(bucket, item["Key"], int(item["Size"]), _etag(item.get("ETag", ""))))
            token = page.get("NextContinuationToken", "") if page.get("IsTruncated") else ""
            if not token:
                return found

    async def head(self, bucket: str, key: str) -> RemoteObject:
        reply = await self._call(_uri(bucket, key), lambda s3: s3.head_object(Bucket=bucket, Key=key))
        return RemoteObject(bucket, key, int(reply["ContentLength"]), _etag(reply.get("ETag", "")))

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """A small object whole (environment.json); :class:`InvalidArgument` past ``max_bytes``."""
        uri = _uri(bucket, key)

        async def get(s3: Any) -> bytes:
            reply = await s3.get_object(Bucket=bucket, Key=key)
            self.stats.body_requests += 1
            async with reply["Body"] as body:
                if int(reply["ContentLength"]) > max_bytes:
                    raise InvalidArgument(f"{uri} is {reply['ContentLength']} bytes, more than the {max_bytes} allowed")
                data: bytes = await body.read()
            self.stats.bytes_received += len(data)
            return data

        return await self._call(uri, get)

    async def download(self, obj: RemoteObject, dest: Path, progress: Callable[[int], None] | None = None) -> None:
        """Copy ``obj`` to ``dest``, reporting each chunk's size to ``progress`` as it arrives.

        A broken transfer goes on from the byte it reached; the result is checked against the
        listed size (and the ETag when it is a plain MD5) before it is renamed into place.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + PART_SUFFIX)
        transfer = _Transfer(obj, part.open("wb"), _md5_of(obj.etag), progress)
        outage = _Outage(self.config)
        done = False
        try:
            while True:
                try:
                    await self._fetch_rest(transfer, outage)
                    break
                except SpotOnError:
                    raise
                except Exception as exc:
                    self._fail_unless_transient(exc, obj.uri)
                    log.info("%s broke off at byte %d (%s); resuming", obj.uri, transfer.have, _describe(exc))
                    self.stats.retries += 1
                    await outage.wait(obj.uri, exc)
            transfer.out.close()
            problem = await asyncio.to_thread(check_file, part, obj, transfer.md5)
            if problem:
                raise Unavailable(f"{obj.uri} arrived damaged ({problem}); try again")
            os.replace(part, dest)
            done = True
        finally:
            transfer.out.close()
            if not done:
                part.unlink(missing_ok=True)

    def presigned_url(self, obj: RemoteObject | tuple[str, str], expires_s: int = DEFAULT_URL_TTL_S) -> str:
        """A GET URL that works without credentials for ``expires_s`` (to probe a video with FFmpeg
        over HTTP). It carries the key id and a signature: never log it or put it in an error."""
        bucket, key = (obj.bucket, obj.key) if isinstance(obj, RemoteObject) else obj
        if self._signer is None:
            # Signing needs no connection; botocore's synchronous client does it without a loop.
            self._signer = botocore.session.get_session().create_client("s3", **self.config.client_args())
        url: str = self._signer.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires_s)
        )
        return url

    # -- internals ---------------------------------------------------------------------------

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                factory = get_session().create_client("s3", **self.config.client_args())
                self._client = await self._exit.enter_async_context(factory)
        return self._client

    async def _call(self, uri: str, op: Callable[[Any], Awaitable[T]]) -> T:
        """``op(client)``, retried while its errors are transient (see the module docstring)."""
        outage = _Outage(self.config)
        while True:
            try:
                return await op(await self._s3())
            except SpotOnError:
                raise
            except Exception as exc:
                self._fail_unless_transient(exc, uri)
                self.stats.retries += 1
                await outage.wait(uri, exc)

    async def _fetch_rest(self, transfer: _Transfer, outage: _Outage) -> None:
        """One GET of the bytes ``transfer`` still lacks, streamed into its file; returns once it
        has them all, raises if the body broke off (a transient error: resume)."""
        obj = transfer.obj
        args: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.etag:
            args["IfMatch"] = f'"{obj.etag}"'  # a resume must continue the same version
        if transfer.have:
            args["Range"] = f"bytes={transfer.have}-"
        s3 = await self._s3()
        reply = await s3.get_object(**args)
        self.stats.body_requests += 1
        async with reply["Body"] as body:
            size = _object_size(reply)
            if size != obj.size:
                raise _changed(obj, f"it is {size} bytes now, {obj.size} when listed")
            pending = bytearray()
            try:
                async for chunk in body.iter_chunks(CHUNK_BYTES):
                    pending += chunk
                    self.stats.bytes_received += len(chunk)
                    outage.reset()  # progress: a later failure starts a new outage
                    if transfer.progress is not None:
                        transfer.progress(len(chunk))
                    if len(pending) >= CHUNK_BYTES:
                        await asyncio.to_thread(transfer.write, bytes(pending))
                        pending.clear()
            finally:
                # Bytes that arrived before a break are good: keep them, resume after them.
                transfer.write(bytes(pending))
        if transfer.have > obj.size:
            raise _changed(obj, f"more than the {obj.size} bytes listed arrived")
        if transfer.have < obj.size:
            raise ConnectionError(f"the body ended at byte {transfer.have} of {obj.size}")

    def _fail_unless_transient(self, exc: Exception, uri: str) -> None:
        if not _is_transient(exc):
            raise _final_error(exc, uri, self.config) from exc


@dataclasses.dataclass(slots=True)
class _Transfer:
    """A download in progress: what has been written of ``obj`` and its running MD5."""

    obj: RemoteObject
    out: IO[bytes]
    md5: Any  # hashlib's MD5 object, None when the ETag is not a plain MD5
    progress: Callable[[int], None] | None
    have: int = 0

    def write(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            if self.md5 is not None:
                self.md5.update(data)
            self.have += len(data)


@dataclasses.dataclass(slots=True)
class _Outage:
    """Consecutive transient failures of one operation: capped doubling waits, and a deadline
    counted from the first failure since the last progress."""

    config: S3Config
    started: float | None = None
    delay: float = FIRST_RETRY_S

    def reset(self) -> None:
        self.started = None
        self.delay = FIRST_RETRY_S

    async def wait(self, uri: str, exc: Exception) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        left = self.started + self.config.outage_wait_s - now
        if left <= 0:
            where = self.config.endpoint_url or f"AWS S3 ({self.config.region})"
            raise Unavailable(
                f"{uri}: object storage at {where} failed for {self.config.outage_wait_s:g} s "
                f"(SPOTON_S3_OUTAGE_WAIT_S); last error: {_describe(exc)}"
            ) from exc
        await asyncio.sleep(min(self.delay, left))
        self.delay = min(self.delay * 2, self.config.retry_max_s)


def check_file(path: Path, obj: RemoteObject, md5: Any = None) -> str | None:
    """Why the file at ``path`` is not ``obj`` (size, or MD5 when the ETag is one), or None.
    Blocking: reads the whole file unless ``md5`` (its running digest) is given.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a"; _ = path.write_bytes(b"hello")
    >>> check_file(path, RemoteObject("b", "a", 5, "5d41402abc4b2a76b9719d911017c592")) is None
    True
    >>> check_file(path, RemoteObject("b", "a", 6, "5d41402abc4b2a76b9719d911017c592"))
    'it has 5 bytes, 6 expected'
    >>> check_file(path, RemoteObject("b", "a", 5, "00000000000000000000000000000000"))
    'its MD5 is 5d41402abc4b2a76b9719d911017c592, the ETag 00000000000000000000000000000000'
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "it is missing"
    if size != obj.size:
        return f"it has {size} bytes, {obj.size} expected"
    if md5 is None:
        md5 = _md5_of(obj.etag)
        if md5 is None:
            return None
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                md5.update(chunk)
    digest: str = md5.hexdigest()
    if digest != obj.etag.lower():
        return f"its MD5 is {digest}, the ETag {obj.etag}"
    return None


def _md5_of(etag: str) -> Any:
    """A fresh MD5 when ``etag`` is one (a single-part upload), else None: a multipart ETag
    (``<hex>-<parts>``) is an MD5 of the parts' MD5s, which says nothing about the bytes alone."""
    if len(etag) == 32 and all(c in "0123456789abcdefABCDEF" for c in etag):
        return hashlib.md5(usedforsecurity=False)
    return None


def _uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _etag(raw: str) -> str:
    """ETags come quoted (``"9e10..."``); RemoteObject keeps them bare."""
    return raw.strip('"')


def _object_size(reply: dict[str, Any]) -> int:
    """The whole object's size from a GET reply, ranged (``bytes 100-199/1048576``) or not."""
    content_range = reply.get("ContentRange")
    if content_range:
        return int(content_range.rsplit("/", 1)[1])
    return int(reply["ContentLength"])


def _changed(obj: RemoteObject, how: str) -> FailedPrecondition:
    return FailedPrecondition(f"{obj.uri} changed since it was listed ({how}): register the environment again")


def _code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(error.get("Code", "")), status


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, botocore.exceptions.ClientError):
        code, status = _code(exc)
        return code in _TRANSIENT or status >= 500 or status == 429
    if isinstance(exc, botocore.exceptions.SSLError):
        return False  # a certificate problem does not heal by itself
    return isinstance(exc, _TRANSIENT_TYPES)


def _final_error(exc: Exception, uri: str, config: S3Config) -> SpotOnError:
    if isinstance(exc, botocore.exceptions.ClientError):
        code, status = _code(exc)
        if code in _MISSING or status == 404:
            return NotFound(f"{uri} does not exist ({code or status})")
        if code in _DENIED or status == 403:
            return PermissionDenied(f"access to {uri} was refused ({code or status}): {CREDENTIALS_HINT}")
        if code in _CHANGED:
            return FailedPrecondition(f"{uri} changed since it was listed ({code}): register the environment again")
        if 400 <= status < 500:
            return InvalidArgument(f"{uri}: object storage refused the request ({code or status}: {_describe(exc)})")
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return PermissionDenied(
            f"no S3 credentials for {uri}: set SPOTON_S3_ACCESS_KEY_ID and SPOTON_S3_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, OSError):  # network OSErrors are transient (above): this is the local disk
        return Unavailable(f"{uri} could not be written to local disk: {_describe(exc)}")
    where = config.endpoint_url or f"AWS S3 ({config.region})"
    return Unavailable(f"{uri}: object storage at {where} failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
