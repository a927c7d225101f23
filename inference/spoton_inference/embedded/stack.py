"""The embedded stack: Triton, PostgreSQL and Redis, then optional service children.

A component that exits on its own is started again, on the same port and data directory, so
clients reconnect to the same endpoint (see :mod:`spoton_inference.embedded.restarts` for
the back-off and the budget). Past the budget the component is FAILED and :meth:`failed`
returns: the owner then leaves the ``async with``, which stops the rest in order.

Triton, PostgreSQL and Redis listen on 127.0.0.1 on free ports; the gRPC API and the
facade where ``listen`` says (:class:`~spoton_inference.embedded.endpoints.Listen`: free
ports on the settings' hosts unless given; ``spoton serve`` gives the configured ones).
All ports are chosen, and fixed ones checked, up front, so the endpoints (and the settings
children receive) are known and a taken port is reported before anything starts.
Components start in order, each waited on by its readiness probe, and stop in reverse
order, also when start-up fails or the surrounding task is cancelled.

Extra children (the inference gRPC service, the facade) are given as factories that build
a :class:`ChildSpec` from the stack's settings, so their command line, environment
(``settings.to_env()``) and readiness probe can use the chosen endpoints::

    def inference(settings: Settings) -> ChildSpec:
        return ChildSpec(
            name="inference",
            argv=(sys.executable, "-m", "spoton_inference", "serve"),
            env=settings.to_env(),
            log_path=settings.data_dir / "logs" / "inference.log",
            ready=lambda: tcp_accepts(settings.grpc_host, settings.grpc_port),
        )

    async def main() -> None:
        with cancel_on_signals():
            async with EmbeddedStack(settings, children=[inference], stack_file=path):
                await stack.failed()  # or asyncio.Event().wait() to run until cancelled
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from spoton_inference.embedded.endpoints import (
    EndpointSettings,
    Listen,
    StackEndpoints,
    client_host,
    host_port,
    local_url,
)
from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.embedded.redis import EmbeddedRedis
from spoton_inference.embedded.restarts import (
    Component,
    RestartPolicy,
    Supervisor,
    remove_supervision,
    supervision_path,
    write_supervision,
)
from spoton_inference.embedded.stackfile import remove_stack_file, write_stack_file
from spoton_inference.embedded.supervisor import ChildProcess, ChildSpec, ChildState, ChildStatus
from spoton_inference.embedded.triton import EmbeddedTriton

logger = logging.getLogger(__name__)


class StackSettings(EndpointSettings, Protocol):
    """What the stack reads of the settings it is given (the root's Settings): its servers'
    data directory and models, and where the public servers listen. Children get a copy with
    every endpoint filled in (:meth:`StackEndpoints.apply_to`)."""

    @property
    def data_dir(self) -> Path: ...
    @property
    def model_repository(self) -> Path: ...


S = TypeVar("S", bound=StackSettings)
# Builds a child's spec from the stack's settings (endpoints filled in).
ChildFactory = Callable[[S], ChildSpec]


class EmbeddedStack(Generic[S]):
    """Starts Triton → PostgreSQL → Redis → ``children`` in order; stops in reverse.

    Use as ``async with``; ``stack_file``, when given, is written once everything is ready
    and removed on stop (see :mod:`spoton_inference.embedded.stackfile`). Crashed components
    are restarted under ``restart``. A fixed port in ``listen`` that is taken raises
    :class:`~spoton_inference.embedded.ports.PortUnavailable` here, before anything starts.
    """

    def __init__(
        self,
        settings: S,
        *,
        children: Sequence[ChildFactory[S]] = (),
        stack_file: Path | None = None,
        restart: RestartPolicy | None = None,
        listen: Listen | None = None,
    ) -> None:
        listen = listen or Listen.free(settings)
        # Claimed first, so the free ports picked for the servers below never take them.
        grpc_port, facade_port = listen.claim()
        self.triton = EmbeddedTriton(settings)
        self.postgres = EmbeddedPostgres(settings)
        self.redis = EmbeddedRedis(settings)
        self.endpoints = StackEndpoints(
            facade_url=local_url(listen.facade_host, facade_port),
            grpc_target=host_port(client_host(listen.grpc_host), grpc_port),
            triton_grpc_url=self.triton.grpc_url,
            triton_http_url=self.triton.http_url,
            postgres_dsn=self.postgres.dsn,
            redis_url=self.redis.url,
        )
        # The settings every child should run with (through settings.to_env()).
        listening = dataclasses.replace(settings, grpc_host=listen.grpc_host, facade_host=listen.facade_host)
        self.settings = self.endpoints.apply_to(listening)
        self.children = [ChildProcess(factory(self.settings)) for factory in children]
        self._stack_file = stack_file
        self._components: list[Component] = [self.triton, self.postgres, self.redis]
        self._components += self.children
        self._started: list[Component] = []
        self._supervision_file = supervision_path(settings.data_dir)
        self.supervisor = Supervisor(self._components, restart or RestartPolicy(), self._publish)

    def status(self) -> list[ChildStatus]:
        """Per-component state in start order, with restarts and the last exit reason;
        failed ones carry the reason and log tail (see :meth:`Supervisor.status`)."""
        return self.supervisor.status()

    def status_of(self, name: str) -> ChildStatus:
        """One component's status (``triton``, ``postgres``, ``redis`` or a child's name)."""
        for status in self.status():
            if status.name == name:
                return status
        raise KeyError(f"no component named {name!r}")

    def healthy(self) -> bool:
        return all(s.state is ChildState.HEALTHY for s in self.status())

    async def failed(self) -> ChildStatus:
        """Wait until a component has spent its restart budget; return its status."""
        return await self.supervisor.failed()

    async def restarted(self, name: str, restarts: int) -> ChildStatus:
        """Wait until component ``name`` is HEALTHY after at least ``restarts`` restarts (or
        FAILED); return its status. For tests that kill a component by its PID."""
        return await self.supervisor.restarted(name, restarts)

    async def start(self) -> StackEndpoints:
        """Start every component in order; on failure the caller must :meth:`stop`."""
        for component in self._components:
            self._started.append(component)
            await component.start()
            self.supervisor.watch(component)
        if self._stack_file is not None:
            write_stack_file(self.endpoints, self._stack_file)
        logger.info("embedded stack ready: %s", self.endpoints)
        return self.endpoints

    async def stop(self) -> None:
        """Remove the stack file, then stop started components in reverse order."""
        if self._stack_file is not None:
            remove_stack_file(self._stack_file)
        await self.supervisor.close()  # first, so nothing restarts while stopping
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                # Keep going: a failure here must not leave the remaining servers running.
                logger.exception("stopping %s failed", component.name)
        remove_supervision(self._supervision_file)

    def _publish(self, statuses: list[ChildStatus]) -> None:
        try:
            write_supervision(self._supervision_file, statuses)
        except OSError as exc:  # health then lacks restart counts; the stack itself goes on
            logger.warning("could not write %s: %s", self._supervision_file, exc)

    async def __aenter__(self) -> EmbeddedStack[S]:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


@contextlib.contextmanager
def cancel_on_signals(
    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """While active, the first of ``signals`` cancels the current task; later ones are ignored.

    Cancellation unwinds ``async with EmbeddedStack(...)``, which stops every child in
    order, also when the signal arrives during start-up. Ignoring repeats keeps an
    impatient second Ctrl-C from interrupting that clean stop (children die with this
    process anyway). Must be entered inside a running event loop, in the main thread.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("cancel_on_signals needs to run inside a task")
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if received:
            logger.warning("%s ignored: already stopping after %s", sig.name, received[0].name)
            return
        received.append(sig)
        logger.info("%s received: stopping", sig.name)
        task.cancel()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
