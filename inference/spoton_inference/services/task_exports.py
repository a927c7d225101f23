"""Where a task's export files are, and how they are listed and served."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path


@dataclasses.dataclass(frozen=True, slots=True)
class ExportInfo:
    name: str
    path: Path
    size_bytes: int
    media_type: str
    url: str


@dataclasses.dataclass(frozen=True, slots=True)
class ExportFiles:
    """A task's exports lie in ``<media root>/tasks/<task id>/exports`` and are served under
    ``<media URL prefix>/tasks/<task id>/exports``."""

    media_root: Path
    media_url_prefix: str
    # By file suffix (pipeline/exports.py EXPORT_MEDIA_TYPES); others are application/octet-stream.
    media_types: Mapping[str, str]

    def directory(self, task_id: str) -> Path:
        return self.media_root / "tasks" / task_id / "exports"

    def listing(self, task_id: str) -> list[ExportInfo]:
        """The task's export files, by name; none before the task wrote any."""
        directory = self.directory(task_id)
        if not directory.is_dir():
            return []
        prefix = f"{self.media_url_prefix}/tasks/{task_id}/exports"
        return [
            ExportInfo(
                p.name,
                p,
                p.stat().st_size,
                self.media_types.get(p.suffix, "application/octet-stream"),
                f"{prefix}/{p.name}",
            )
            for p in sorted(directory.iterdir())
            if p.is_file()
        ]
