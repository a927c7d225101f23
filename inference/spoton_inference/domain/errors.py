"""Domain errors, raised by the domain rules and the services; the gRPC edge maps each to a status code."""

from __future__ import annotations


class SpotOnError(Exception):
    """Base class: the message must tell the user what to change."""


class InvalidArgument(SpotOnError):
    """The request itself is wrong (bad image, bad homography, bad path)."""


class NotFound(SpotOnError):
    """A named entity (environment, task, export) does not exist."""


class AlreadyExists(SpotOnError):
    """An entity with that id exists already (creating an environment or camera twice)."""


class UnsupportedMedia(InvalidArgument):
    """An upload is not a video this service can decode; REST answers 415 for it."""

    # Sent as the ``spoton-error-reason`` trailing metadata, so clients can tell it apart.
    reason = "unsupported-media-type"


class ResourceExhausted(SpotOnError):
    """A configured limit was hit (an upload larger than SPOTON_JOB_MAX_UPLOAD_BYTES)."""


class FailedPrecondition(SpotOnError):
    """The request is valid but the system is not in a state to serve it."""


class Unavailable(SpotOnError):
    """A dependency (Triton, PostgreSQL, Redis) cannot be reached right now."""


class OutOfRange(SpotOnError):
    """A position asked for lies outside what is kept: events resumed from a sequence that
    has left the retention window; the gRPC status OUT_OF_RANGE."""


class InvalidFields(InvalidArgument):
    """Several fields of one item are wrong; ``errors`` lists (field, message) for each, so an
    import can report them per row. The message joins them after ``where``."""

    def __init__(self, where: str, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__(f"{where}: " + "; ".join(message for _, message in errors))


class TooManyUploads(ResourceExhausted):
    """SPOTON_MAX_CONCURRENT_UPLOADS uploads are streaming already; REST answers 503 with Retry-After."""

    reason = "too-many-uploads"


class InsufficientStorage(ResourceExhausted):
    """An upload would leave less than SPOTON_UPLOAD_DISK_RESERVE_BYTES free; REST answers 507."""

    reason = "insufficient-storage"


class IdempotencyKeyReused(FailedPrecondition):
    """An idempotency key sent again with a different request; REST answers 422."""

    reason = "idempotency-key-reused"


class IdempotencyKeyInUse(FailedPrecondition):
    """The request that first used an idempotency key is still running; REST answers 409."""

    reason = "idempotency-key-in-use"


class RateLimited(ResourceExhausted):
    """A credential used up its rate limit (domain/rate_limit.py); RESOURCE_EXHAUSTED with the
    ``retry-after`` trailing metadata, REST answers 429 with Retry-After."""

    reason = "rate-limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class PermissionDenied(SpotOnError):
    """The caller may not do this at all: a principal limited to some environments asked to
    create one outside them (existing entities it cannot see answer NotFound instead)."""


class Unauthenticated(SpotOnError):
    """No credential, or one that is malformed, unknown, expired or revoked; the gRPC status
    UNAUTHENTICATED, REST 401."""
