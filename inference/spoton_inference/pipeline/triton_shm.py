"""A bounded pool of POSIX shared-memory regions registered with a Triton on this host.

A frame sent through Triton's system shared memory is written once into a region both
processes map, and the gRPC request only names the region: the ~900 KB of a 640x480 RGB
frame never passes through protobuf, the socket and Triton's request parser.

* At most ``max_regions`` regions exist; a caller past that waits for one to come back.
  A region is reused across requests; when none fits a request and the pool is full, the
  smallest free one is replaced by a bigger one (sizes rounded up to a power of two, so
  frames and crop batches settle quickly).
* Each region is unlinked from ``/dev/shm`` as soon as Triton has mapped it: the memory
  lives only as long as the two mappings, so nothing is left behind even if this process
  is killed. Registrations a killed process left in Triton are dropped by the next pool.
* A restarted Triton has forgotten every registration: :meth:`ShmPool.forget` drops them,
  and the next lease registers fresh regions.
* :meth:`ShmPool.close` unregisters what it registered.

Example (with a Triton on this host):
    >>> pool = ShmPool(client)  # doctest: +SKIP
    >>> async with pool.lease(frame.nbytes) as region:  # doctest: +SKIP
    ...     region.write(frame)
    ...     tensor.set_shared_memory(region.name, frame.nbytes)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import mmap
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

log = logging.getLogger(__name__)

# Where Linux keeps POSIX shared memory (shm_open's namespace), which Triton opens by key.
SHM_DIR = Path("/dev/shm")
# Regions one client keeps: enough for every frame and crop batch in flight on a few cameras.
DEFAULT_MAX_REGIONS = 8
# Smallest region: a 640x480 RGB frame (921,600 bytes) fits.
MIN_REGION_BYTES = 1 << 20
# Region names: spoton-<pid>-<token>-<n>; the pid tells a killed owner's regions apart.
NAME_PREFIX = "spoton-"
_NAME = re.compile(r"^spoton-(\d+)-[0-9a-f]+-\d+$")
# Pauses between tries to unregister a region Triton still holds (about 1 s in all).
UNREGISTER_RETRY_S = (0.005, 0.02, 0.05, 0.1, 0.25, 0.5)
# SPOTON_TRITON_SHARED_MEMORY values.
SHM_MODES = ("auto", "on", "off")


class ShmUnsupported(Exception):
    """Triton cannot map this host's shared memory (it runs elsewhere, or in a container
    without this host's /dev/shm), or this host has none to spare: send tensors over gRPC."""


def wants_shared_memory(mode: str, url: str) -> bool:
    """Whether to try shared memory with Triton at ``url``: ``on``, or ``auto`` and a loopback host.

    >>> wants_shared_memory("auto", "127.0.0.1:8001"), wants_shared_memory("auto", "triton:8001")
    (True, False)
    >>> wants_shared_memory("auto", "localhost:8001"), wants_shared_memory("on", "triton:8001")
    (True, True)
    """
    if mode not in SHM_MODES:
        raise ValueError(f"SPOTON_TRITON_SHARED_MEMORY must be one of {', '.join(SHM_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    host = url.rsplit(":", 1)[0] if url.count(":") == 1 else url  # host:port, [v6]:port or bare v6
    host = host.removeprefix("[").split("]")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Region:
    """One shared-memory region, mapped here and registered with Triton under ``name``."""

    def __init__(self, name: str, size: int, generation: int) -> None:
        self.name = name
        self.size = size
        self.generation = generation
        path = SHM_DIR / name
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            # Allocated now: a full /dev/shm (Docker's default is 64 MB) fails here with ENOSPC,
            # where a sparse file would kill the process with SIGBUS at the first write.
            os.posix_fallocate(fd, 0, size)
            self._map = mmap.mmap(fd, size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        self._linked = True

    @property
    def key(self) -> str:
        """The shm_open key Triton maps."""
        return "/" + self.name

    def unlink(self) -> None:
        """Drop the /dev/shm name; both mappings stay valid."""
        if self._linked:
            (SHM_DIR / self.name).unlink(missing_ok=True)
            self._linked = False

    def write(self, array: np.ndarray) -> int:
        """Copy ``array`` (any layout, e.g. a BGR->RGB view) in, C-ordered; returns its byte size."""
        view = np.ndarray(array.shape, dtype=array.dtype, buffer=self._map)
        np.copyto(view, array, casting="no")
        del view  # the mapping cannot close while a view exports it
        return array.nbytes

    def close(self) -> None:
        self.unlink()
        self._map.close()


class ShmPool:
    """Regions for one Triton client; see the module docstring."""

    def __init__(self, client: triton.InferenceServerClient, max_regions: int = DEFAULT_MAX_REGIONS) -> None:
        self._client = client
        self._prefix = f"{NAME_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-"
        self._numbers = itertools.count()
        self._max_regions = max_regions
        self._slots = asyncio.Semaphore(max_regions)
        self._free: list[Region] = []
        self._count = 0  # regions that exist: free, leased, or being registered
        self._registered: set[str] = set()
        self._generation = 0
        self._swept = False
        self._closed = False

    @property
    def prefix(self) -> str:
        """What the names of this pool's regions start with (other pools, in this process or
        others, have their own)."""
        return self._prefix

    @property
    def registered(self) -> int:
        """How many regions Triton holds for this pool."""
        return len(self._registered)

    @contextlib.asynccontextmanager
    async def lease(self, nbytes: int) -> AsyncIterator[Region]:
        """A registered region of at least ``nbytes``, this caller's until the block ends.

        Raises :class:`ShmUnsupported` when Triton cannot map it, and tritonclient's
        :class:`InferenceServerException` when Triton cannot be asked.
        """
        async with self._slots:
            region = await self._take(nbytes)
            try:
                yield region
            finally:
                await self._give_back(region)

    async def forget(self) -> None:
        """Triton lost its registrations (it restarted): free regions are dropped, leased
        ones when they come back, and new ones are registered."""
        self._generation += 1
        free, self._free = self._free, []
        for region in free:
            await self._drop(region)

    async def close(self) -> None:
        """Unregister and unmap the free regions (leased ones go when given back)."""
        self._closed = True
        free, self._free = self._free, []
        for region in free:
            await self._drop(region)

    async def _take(self, nbytes: int) -> Region:
        fitting = [r for r in self._free if r.size >= nbytes]
        if fitting:
            region = min(fitting, key=lambda r: r.size)
            self._free.remove(region)
            return region
        # Counted before the first await, so that callers in between see the pool as it will be.
        replaced = None
        if self._count >= self._max_regions:
            # None fits and the pool is full: the smallest free one makes way. There is one, as
            # this caller holds a slot but no region, and every other holder at most one.
            replaced = min(self._free, key=lambda r: r.size)
            self._free.remove(replaced)
        else:
            self._count += 1
        try:
            if replaced is not None:
                await self._unregister(replaced)
                replaced.close()
            return await self._create(max(MIN_REGION_BYTES, 1 << (nbytes - 1).bit_length()))
        except BaseException:
            self._count -= 1
            raise

    async def _give_back(self, region: Region) -> None:
        if self._closed or region.generation != self._generation:
            await self._drop(region)
        else:
            self._free.append(region)

    async def _drop(self, region: Region) -> None:
        self._count -= 1
        await self._unregister(region)
        region.close()

    async def _create(self, size: int) -> Region:
        if not self._swept:
            await self._sweep_dead_owners()
        try:
            region = Region(f"{self._prefix}{next(self._numbers)}", size, self._generation)
        except OSError as exc:
            raise ShmUnsupported(f"cannot make a {size}-byte region in {SHM_DIR}: {exc}") from exc
        try:
            await self._client.register_system_shared_memory(region.name, region.key, size)
        except InferenceServerException as exc:
            region.close()
            if _is_unreachable(exc):
                raise
            raise ShmUnsupported(f"Triton could not map shared memory {region.key}: {exc}") from exc
        except BaseException:
            region.close()
            raise
        region.unlink()
        self._registered.add(region.name)
        return region

    async def _unregister(self, region: Region) -> None:
        """Unregister, waiting out Triton's hold on a region a request has just used (it
        refuses "currently in use" until it has released the request's inputs, which can
        come after the response). A restarted Triton no longer holds it: nothing to do."""
        if region.name not in self._registered:
            return
        self._registered.discard(region.name)
        for delay in (*UNREGISTER_RETRY_S, None):
            try:
                await self._client.unregister_system_shared_memory(region.name)
                return
            except InferenceServerException as exc:
                if "in use" not in str(exc):
                    return  # gone with a restart, or Triton unreachable: nothing to wait for
                if delay is None:
                    break
            await asyncio.sleep(delay)
        log.warning("Triton still holds shared-memory region %s; it goes when Triton restarts", region.name)

    async def _sweep_dead_owners(self) -> None:
        """Unregister regions whose owning process (this host's pid in the name) is gone."""
        status = await self._client.get_system_shared_memory_status(as_json=True)
        for name in status.get("regions", {}):
            match = _NAME.match(name)
            if match and not _pid_alive(int(match.group(1))):
                log.info("dropping Triton shared-memory region %s of a process that is gone", name)
                with contextlib.suppress(InferenceServerException):
                    await self._client.unregister_system_shared_memory(name)
        self._swept = True


def is_lost_region(exc: InferenceServerException) -> bool:
    """Whether Triton refused a request for naming a region it does not hold (it restarted)."""
    text = str(exc).lower()
    return "shared memory region" in text and ("unable to find" in text or "not registered" in text)


def _is_unreachable(exc: InferenceServerException) -> bool:
    return exc.status() in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
