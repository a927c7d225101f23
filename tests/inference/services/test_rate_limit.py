"""Rate limits per credential on task starts and uploads: a burst, then a steady rate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from spoton_inference.domain.errors import InvalidArgument, RateLimited, UnsupportedMedia
from spoton_inference.domain.principal import SYSTEM, Principal, Role, reset_current_principal, set_current_principal
from spoton_inference.domain.rate_limit import RateLimiter
from spoton_inference.services.catalog import CameraSpec, EnvironmentSpec
from spoton_inference.services.jobs import UploadRequest

from .services import services

CI = Principal("ci", Role.OPERATOR, frozenset(), "key-ci", "api_key")
OTHER = Principal("other", Role.OPERATOR, frozenset(), "key-other", "api_key")


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    token = set_current_principal(principal)
    try:
        yield
    finally:
        reset_current_principal(token)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_more_each_interval_per_credential():
    clock = Clock()
    limit = RateLimiter("task starts", per_minute=3, clock=clock)
    for _ in range(3):
        limit.take(CI)
    with pytest.raises(RateLimited, match="at most 3 task starts a minute") as refused:
        limit.take(CI)
    assert refused.value.retry_after_s == pytest.approx(20.0)
    limit.take(OTHER)  # another credential has its own bucket
    clock.now += 10
    with pytest.raises(RateLimited) as refused:
        limit.take(CI)
    assert refused.value.retry_after_s == pytest.approx(10.0)
    clock.now += 10
    limit.take(CI)
    with pytest.raises(RateLimited):
        limit.take(CI)


def test_the_service_itself_is_not_limited_and_zero_turns_it_off():
    limit = RateLimiter("task starts", per_minute=1, clock=Clock())
    for _ in range(5):
        limit.take(SYSTEM)
    off = RateLimiter("uploads", per_minute=0, clock=Clock())
    for _ in range(5):
        off.take(CI)


def test_buckets_are_bounded():
    clock = Clock()
    limit = RateLimiter("uploads", per_minute=1, clock=clock, max_buckets=2)
    limit.take(CI)
    limit.take(OTHER)
    limit.take(Principal("third", Role.OPERATOR, frozenset(), "key-3", "api_key"))  # CI's bucket goes
    limit.take(CI)
    with pytest.raises(RateLimited):
        limit.take(CI)


@pytest.fixture(scope="module")
async def limited(db, make_data_dir):
    s = services(db, make_data_dir("rate-limit"), rate_limit_task_starts_per_min=2, rate_limit_uploads_per_min=1)
    camera = CameraSpec("c1", fps=10.0, width=64, height=48)
    await s.catalog.create_environment(EnvironmentSpec("limit-hall", "Hall", cameras=(camera,)))
    return s


async def test_task_starts_past_the_limit_are_refused_with_when_to_retry(limited):
    # Each start attempt counts, refused ones too (here: an unknown camera), so a client
    # hammering the service is slowed whatever it sends.
    with acting_as(CI):
        for _ in range(2):
            with pytest.raises(InvalidArgument, match="nope"):
                await limited.tasks.start("limit-hall", ["nope"])
        with pytest.raises(RateLimited) as refused:
            await limited.tasks.start("limit-hall", ["nope"])
    assert 0 < refused.value.retry_after_s <= 30
    with acting_as(OTHER), pytest.raises(InvalidArgument):
        await limited.tasks.start("limit-hall", ["nope"])


async def test_uploads_past_the_limit_are_refused_before_they_are_read(limited):
    read = 0

    async def not_a_video():
        nonlocal read
        read += 1
        yield b"not a video at all" * 100

    with acting_as(CI):
        with pytest.raises(UnsupportedMedia):
            await limited.jobs.upload(UploadRequest("a.mp4"), not_a_video())
        with pytest.raises(RateLimited, match="uploads"):
            await limited.jobs.upload(UploadRequest("b.mp4"), not_a_video())
    assert read == 1
