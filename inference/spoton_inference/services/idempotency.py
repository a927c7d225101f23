"""Idempotency keys: a retried StartTask or UploadJob answers what the first request created.

A client that timed out cannot tell whether its request took effect; sent again with the same
key, it gets the task or job the first one created instead of a second one. Keys are scoped to
the operation (a StartTask key and an UploadJob key never meet) and shared by all environments,
so a client should send a fresh UUID per new request. The same key with a different request is
refused: the client has a bug, and guessing which request it meant would hide it.

The key is recorded in PostgreSQL (storage/idempotency_store.py) in the transaction that
creates the task or job, so two requests racing with one key create one thing.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re

import msgspec

from spoton_inference.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidArgument

MAX_KEY_CHARS = 255
# Printable ASCII without space, '"' and '\': what fits an HTTP structured-field string
# (the Idempotency-Key header) without escapes, and what a UUID or ULID is made of.
_KEY = re.compile(r"[!#-\[\]-~]+")


class Operation(enum.StrEnum):
    START_TASK = "start_task"
    UPLOAD_JOB = "upload_job"


@dataclasses.dataclass(frozen=True, slots=True)
class KeyClaim:
    """A request's claim on its key: the key, and a digest of the request it came with."""

    operation: Operation
    key: str
    request_hash: str
    # How long a used key is remembered (SPOTON_IDEMPOTENCY_KEY_TTL_S).
    ttl_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class KeyHolder:
    """What an earlier request with the key recorded; no task or job yet while it runs."""

    request_hash: str
    task_id: str | None
    job_id: str | None


class KeyTaken(Exception):
    """The key was claimed by an earlier request (``holder``; None when it has since gone).
    Raised by the idempotency stores, caught by the task start and the job upload."""

    def __init__(self, holder: KeyHolder | None) -> None:
        super().__init__("idempotency key taken")
        self.holder = holder


def claim_for(operation: Operation, key: str, request: object, ttl_s: float) -> KeyClaim | None:
    """The claim of a request that sent ``key`` (None without one); ``request`` is what must
    match on a retry, as msgspec encodes it (without the key itself)."""
    if not key:
        return None
    if len(key) > MAX_KEY_CHARS or not _KEY.fullmatch(key):
        raise InvalidArgument(
            f"idempotency_key must be 1 to {MAX_KEY_CHARS} printable ASCII characters without spaces, "
            '`"` or `\\`; a UUID is a good key'
        )
    digest = hashlib.sha256(msgspec.json.encode(request)).hexdigest()
    return KeyClaim(operation, key, digest, ttl_s)


def replayed(claim: KeyClaim, holder: KeyHolder | None) -> str:
    """The id of the task or job the key's first request created; raises when a retry cannot
    be answered with it."""
    if holder is not None and holder.request_hash != claim.request_hash:
        raise IdempotencyKeyReused(
            f"idempotency key {claim.key!r} was used with a different request; send a new key for "
            "a new request, or the same request to get what the first one created"
        )
    created = holder and (holder.task_id or holder.job_id)
    if not created:
        raise IdempotencyKeyInUse(
            f"the request that first used idempotency key {claim.key!r} is still running; "
            "retry once it has ended to get what it created"
        )
    return created
