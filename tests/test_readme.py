"""The README's commands work: every command block in README.md runs, top to bottom as a
reader types them, against a real stack, or is exempted in the README with a reason.

How the blocks run (``support.readme_blocks`` says how the README marks them):

- each block in a fresh ``bash -e -o pipefail`` in the repository root, in README order,
  and must exit 0; a ``console`` block's commands must also print what the README shows;
- the block marked ``<!-- doc-check: stack -->`` (``make serve``) runs in the background from
  there on, and is stopped with Ctrl-C (SIGINT to its process group) after the last block;
- environment: ``.venv/bin`` on PATH (as after ``. .venv/bin/activate``), then ``ghz`` from
  ``../shared/tools`` when none is on PATH (users download it, see the README);
  ``SPOTON_DATA_DIR`` and ``SPOTON_STACK_FILE`` in a temporary directory, so the check
  touches neither ``var/data`` nor ``var/stack.json``; once the stack is up,
  ``SPOTON_API_KEY`` is the admin key its first start wrote, as the README tells a user to
  export; no other inherited ``SPOTON_*`` or ``MAKE*`` variable;
- ports: every block gets two free ports in ``SPOTON_FACADE_PORT`` and ``SPOTON_GRPC_PORT``
  (so ``make serve``, and ``make demo``'s own stack, listen there), and the README's default
  addresses (``localhost:8080``, ``127.0.0.1:8080``, ``localhost:50051``, ``127.0.0.1:50051``)
  get those ports instead: the only change made to any command's text;
- ``curl`` is run with ``--fail-with-body``, so an HTTP error fails the block (a user would
  see the problem document printed; the check needs the exit status to say so).

The blocks write where the README says they do, as for a user: ``var/demo/``, ``var/track/``,
a few files in ``/tmp``, and ``secrets/`` (``make compose-secrets``, kept when it is there).
They need ``../shared/real/`` beside the repository, as CI has it.

A block exempted with ``<!-- doc-check: skip: REASON -->`` must give a reason, and a reason
that names a test file (``tests/....py``) must name one that exists.
"""

from __future__ import annotations

import dataclasses
import doctest
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import readme_blocks
from support.readme_blocks import Block, ReadmeError, output_matches, parse_blocks

from spoton_inference.embedded.ports import pick_free_ports, port_is_free

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"

try:
    BLOCKS, PARSE_ERROR = parse_blocks(README.read_text()), None
except ReadmeError as exc:  # reported by the test below, not as a collection error that stops the run
    BLOCKS, PARSE_ERROR = [], exc
COMMANDS = [b for b in BLOCKS if b.is_command]
SHARED_GHZ_DIR = REPO_ROOT.parent / "shared" / "tools"

DEFAULT_BLOCK_TIMEOUT_S = 300.0
# The first start of the stack loads and warms both models in Triton.
STACK_READY_TIMEOUT_S = 420.0
STACK_STOP_TIMEOUT_S = 90.0
# The environment `make serve` registers (the generated demo), named by the README's examples.
DEMO_ENVIRONMENT = "synthetic-hall"
README_PORTS = {"facade": 8080, "grpc": 50051}
TEST_FILE = re.compile(r"\btests/[\w/.-]+\.py\b")


def test_the_block_reader_does_what_its_examples_say() -> None:
    assert doctest.testmod(readme_blocks).failed == 0


def test_every_command_block_is_run_or_exempted_with_a_reason() -> None:
    """Tagging and exemptions: what keeps a new README command from going unchecked."""
    assert PARSE_ERROR is None, f"README.md: {PARSE_ERROR}"
    assert COMMANDS, "README.md has no command block: the parser is broken"
    assert [b.line for b in COMMANDS if b.starts_stack], "one block must be marked `<!-- doc-check: stack -->`"
    assert len([b for b in COMMANDS if b.starts_stack]) == 1
    for block in COMMANDS:
        reason = block.skip_reason
        if reason is None:
            continue
        assert reason.strip(), f"README.md line {block.line}: an exemption needs a reason"
        for named in TEST_FILE.findall(reason):
            assert (REPO_ROOT / named).is_file(), f"README.md line {block.line}: the exemption names {named}, missing"
    for block in BLOCKS:
        assert block.is_command or not block.directives, f"README.md line {block.line}: a directive on a non-command"


def _configuration_table() -> set[str]:
    """The variables the README's configuration table names; ``_X`` in a cell abbreviates the
    cell's first name with its last parts replaced (``SPOTON_A_B_WEIGHT``, ``_C_WEIGHT``)."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        cell = re.findall(r"`([A-Z_][A-Z0-9_]*)`", row.split("|")[1])
        first = cell[0]
        for name in cell:
            if name.startswith("_"):
                name = "_".join(first.split("_")[: -name.count("_")]) + name
            names.add(name)
    return names


def test_the_configuration_table_names_every_setting_and_only_real_ones() -> None:
    from spoton_facade.settings import env_names as facade_env_names
    from spoton_inference.settings import env_names

    documented = _configuration_table()
    settings = set(env_names()) | set(facade_env_names())
    assert sorted(settings - documented) == [], "settings missing from README.md's configuration table"
    sources = "".join(p.read_text() for d in ("inference", "facade", "clients") for p in (REPO_ROOT / d).rglob("*.py"))
    # A documented name that is no settings field must still be read somewhere (SPOTON_STACK_FILE).
    stale = sorted(n for n in documented - settings if n not in sources)
    assert stale == [], "README.md's configuration table names variables nothing reads"


# -- running the blocks --------------------------------------------------------------------------


@dataclasses.dataclass
class DocSession:
    """What the blocks share: the environment they run in and the stack in the background."""

    env: dict[str, str]
    ports: dict[str, int]
    work: Path
    stack: subprocess.Popen[bytes] | None = None
    stack_log: Path | None = None
    # Set when the stack block failed: the blocks after it are reported as not run, not as
    # a cascade of refused connections.
    stack_failed_at: int | None = None

    def substitute(self, text: str) -> str:
        for name, default in README_PORTS.items():
            text = re.sub(rf"\b(localhost|127\.0\.0\.1):{default}\b", rf"\g<1>:{self.ports[name]}", text)
        return text

    def run(self, script: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", self.substitute(script)],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )


def _tool_dir(work: Path) -> Path:
    """A directory of shims put first on PATH: curl that fails on HTTP errors."""
    shims = work / "shims"
    shims.mkdir()
    curl = shutil.which("curl")
    assert curl is not None, "curl is needed by the README's examples"
    shim = shims / "curl"
    shim.write_text(f'#!/bin/sh\nexec {curl} --fail-with-body --silent --show-error "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shims


def _block_env(work: Path, ports: dict[str, int]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTON_", "MAKE", "MFLAGS"))}
    path = [str(_tool_dir(work)), str(REPO_ROOT / ".venv" / "bin")]
    if shutil.which("ghz") is None:
        path.append(str(SHARED_GHZ_DIR))
    return {
        **inherited,
        "PATH": os.pathsep.join([*path, inherited.get("PATH", os.defpath)]),
        "SPOTON_DATA_DIR": str(work / "data"),
        "SPOTON_STACK_FILE": str(work / "stack.json"),
        "SPOTON_FACADE_PORT": str(ports["facade"]),
        "SPOTON_GRPC_PORT": str(ports["grpc"]),
    }


@pytest.fixture(scope="module")
def doc_session() -> Iterator[DocSession]:
    work = Path(tempfile.mkdtemp(prefix="spoton-readme-"))
    # Traversable by PostgreSQL, which runs as another user when the tests run as root.
    work.chmod(0o755)
    facade, grpc_port = pick_free_ports(2)
    ports = {"facade": facade, "grpc": grpc_port}
    session = DocSession(_block_env(work, ports), ports, work)
    try:
        yield session
    finally:
        if session.stack is not None and session.stack.poll() is None:
            os.killpg(session.stack.pid, signal.SIGKILL)
            session.stack.wait()
        shutil.rmtree(work, ignore_errors=True)


def _start_stack(session: DocSession, block: Block) -> None:
    session.stack_log = session.work / "stack.log"
    with session.stack_log.open("wb") as log:
        # Its own process group, as a terminal's foreground job: Ctrl-C reaches make and spoton.
        session.stack = subprocess.Popen(
            ["bash", "-c", session.substitute(block.script())],
            cwd=REPO_ROOT,
            env=session.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    key_file = Path(session.env["SPOTON_DATA_DIR"]) / "secrets" / "admin_api_key"
    url = f"http://127.0.0.1:{session.ports['facade']}/api/v1/environments"
    deadline = time.monotonic() + STACK_READY_TIMEOUT_S
    while True:
        assert session.stack.poll() is None, f"the stack exited:\n{session.stack_log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"the stack never came up:\n{session.stack_log.read_text()[-4000:]}"
        if key_file.is_file():
            key = key_file.read_text().strip()
            try:
                listed = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
            except httpx.TransportError:
                listed = None
            if listed is not None and listed.status_code == 200:
                # The stack file is written once every component has started, a moment after
                # the facade answers: up means both.
                if any(e["environment_id"] == DEMO_ENVIRONMENT for e in listed.json()["environments"]):
                    if Path(session.env["SPOTON_STACK_FILE"]).is_file():
                        break
        time.sleep(1)
    # What the README has a user export once the stack is up.
    session.env["SPOTON_API_KEY"] = key


def _stop_stack(session: DocSession) -> str:
    assert session.stack is not None and session.stack_log is not None
    os.killpg(session.stack.pid, signal.SIGINT)
    session.stack.wait(timeout=STACK_STOP_TIMEOUT_S)
    return session.stack_log.read_text()


@pytest.mark.integration
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("block", COMMANDS, ids=[f"L{b.line}-{b.language}" for b in COMMANDS])
def test_readme_command_block(doc_session: DocSession, block: Block) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"README.md line {block.line}: {block.skip_reason}")
    if doc_session.stack_failed_at is not None:
        failed_at = doc_session.stack_failed_at
        pytest.fail(f"README.md line {block.line}: not run, the stack block (line {failed_at}) failed")
    if block.starts_stack:
        doc_session.stack_failed_at = block.line
        _start_stack(doc_session, block)
        doc_session.stack_failed_at = None
        return
    timeout_s = block.timeout_s(DEFAULT_BLOCK_TIMEOUT_S)
    if block.language != "console":
        done = doc_session.run(block.script(), timeout_s)
        assert done.returncode == 0, f"README.md line {block.line} failed:\n{_report(block.script(), done)}"
        return
    for command, expected in block.console_steps():
        done = doc_session.run(command, timeout_s)
        assert done.returncode == 0, f"README.md line {block.line} failed:\n{_report(command, done)}"
        actual = [line.rstrip() for line in done.stdout.splitlines()]
        wanted = [doc_session.substitute(line).rstrip() for line in expected]
        assert output_matches(wanted, actual), f"README.md line {block.line}: output differs:\n{_report(command, done)}"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_readme_stack_stops_cleanly_on_ctrl_c(doc_session: DocSession) -> None:
    """Last, after every block: the README says Ctrl-C stops `make serve` cleanly."""
    if doc_session.stack is None:
        pytest.skip("the stack block did not run (run the whole module)")
    output = _stop_stack(doc_session)
    assert "Traceback" not in output, output[-4000:]
    assert not Path(doc_session.env["SPOTON_STACK_FILE"]).exists(), "the stack file outlived the stack"
    deadline = time.monotonic() + 30
    while not all(port_is_free(p) for p in doc_session.ports.values()):
        assert time.monotonic() < deadline, f"ports still taken after Ctrl-C:\n{output[-4000:]}"
        time.sleep(0.5)


def _report(command: str, done: subprocess.CompletedProcess[str]) -> str:
    return (
        f"$ {command}\n(exit {done.returncode})\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
