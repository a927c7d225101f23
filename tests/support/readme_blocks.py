"""The README's fenced code blocks, as the doc-check (``tests/test_readme.py``) reads them.

Every fenced block says what it is in its info string. ``sh``, ``bash``, ``shell`` and
``console`` blocks are commands; anything else (``text``, ``json``, ...) is not. An untagged
block is an error, so a new command cannot slip past the check untagged.

A command block is run unless an HTML comment right above it (no blank line between) says
otherwise; one directive per comment, several comments may stack:

- ``<!-- doc-check: skip: REASON -->``: not run, for REASON (required, not empty);
- ``<!-- doc-check: stack -->``: the block that starts the stack every later block talks to:
  run in the background until the last block has run, then stopped with Ctrl-C (SIGINT);
- ``<!-- doc-check: timeout: SECONDS -->``: a longer bound than the default.

In a ``console`` block, lines starting with ``$ `` are commands and the lines after one are
its expected output; a ``...`` line there stands for any number of lines.

Example:
    >>> doc = '''
    ... ```text
    ... a diagram
    ... ```
    ... <!-- doc-check: skip: needs Docker -->
    ... ```sh
    ... docker compose up
    ... ```
    ... '''
    >>> [(b.language, b.is_command, b.skip_reason) for b in parse_blocks(doc)]
    [('text', False, None), ('sh', True, 'needs Docker')]
"""

from __future__ import annotations

import dataclasses
import re

COMMAND_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
PROMPT = "$ "
ANY_LINES = "..."

_FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^<!--\s*doc-check:\s*(?P<key>[a-z-]+)\s*(?::\s*(?P<value>.*?))?\s*-->$")
_COMMENT = re.compile(r"^<!--.*-->$")
KNOWN_DIRECTIVES = frozenset({"skip", "stack", "timeout"})


class ReadmeError(ValueError):
    """A README block the doc-check cannot classify: untagged, or a malformed directive."""


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: ``line`` is the 1-based line of its opening fence."""

    line: int
    language: str
    text: str
    directives: dict[str, str]

    @property
    def is_command(self) -> bool:
        return self.language in COMMAND_LANGUAGES

    @property
    def skip_reason(self) -> str | None:
        return self.directives.get("skip")

    @property
    def starts_stack(self) -> bool:
        return "stack" in self.directives

    def timeout_s(self, default: float) -> float:
        return float(self.directives.get("timeout", default))

    def script(self) -> str:
        """The shell text to run: a ``console`` block's commands (``$ `` lines and their ``\\``
        continuations), any other command block as it is."""
        if self.language != "console":
            return self.text
        return "\n".join(command for command, _ in self.console_steps())

    def console_steps(self) -> list[tuple[str, list[str]]]:
        """A ``console`` block as (command, expected output lines) pairs."""
        steps: list[tuple[str, list[str]]] = []
        continued = False
        for raw in self.text.splitlines():
            if raw.startswith(PROMPT) or continued:
                line = raw.removeprefix(PROMPT) if not continued else raw
                if continued:
                    command, expected = steps[-1]
                    steps[-1] = (f"{command}\n{line}", expected)
                else:
                    steps.append((line, []))
                continued = line.endswith("\\")
            elif steps:
                steps[-1][1].append(raw)
            else:
                raise ReadmeError(f"console block text before its first '{PROMPT}' command: {raw!r}")
        return steps


def parse_blocks(markdown: str) -> list[Block]:
    """Every fenced block of ``markdown``, with the doc-check directives right above it."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, language = opening["fence"], opening["info"].strip().split(" ", 1)[0]
        if not language:
            raise ReadmeError(f"line {i + 1}: a fenced block without a language (use `text` for non-commands)")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        if end is None:
            raise ReadmeError(f"line {i + 1}: the block is never closed")
        blocks.append(Block(i + 1, language, "\n".join(lines[i + 1 : end]), _directives_above(lines, i)))
        i = end + 1
    return blocks


def _directives_above(lines: list[str], fence_index: int) -> dict[str, str]:
    directives: dict[str, str] = {}
    j = fence_index - 1
    while j >= 0 and _COMMENT.match(lines[j].strip()):
        found = _DIRECTIVE.match(lines[j].strip())
        if found is not None:
            key, value = found["key"], (found["value"] or "").strip()
            if key not in KNOWN_DIRECTIVES:
                raise ReadmeError(f"line {j + 1}: unknown doc-check directive {key!r}")
            if key in ("skip", "timeout") and not value:
                raise ReadmeError(f"line {j + 1}: `doc-check: {key}` needs a value (skip: why; timeout: seconds)")
            directives[key] = value
        j -= 1
    return directives


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` lines are ``expected``, where a ``...`` line matches any run of lines.

    Example:
        >>> output_matches(["a", "...", "z"], ["a", "b", "c", "z"])
        True
        >>> output_matches(["a", "z"], ["a", "b", "z"])
        False
    """
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == ANY_LINES:
        return any(output_matches(rest, actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and actual[0] == head and output_matches(rest, actual[1:])
