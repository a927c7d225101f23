"""A task's export files: where they lie, how they are listed and named for download."""

from __future__ import annotations

from pathlib import Path

from spoton_inference.services.task_exports import ExportFiles, ExportInfo


def test_exports_are_listed_by_name_with_their_type_and_url(tmp_path: Path) -> None:
    files = ExportFiles(tmp_path, "/media", {".txt": "text/plain"})
    directory = files.directory("t1")
    assert directory == tmp_path / "tasks" / "t1" / "exports"
    assert files.listing("t1") == []  # nothing written yet
    directory.mkdir(parents=True)
    (directory / "c1.global.txt").write_text("1,2\n")
    (directory / "tracking.bin").write_bytes(b"xy")
    (directory / "sub").mkdir()  # only files are exports
    url = "/media/tasks/t1/exports"
    assert files.listing("t1") == [
        ExportInfo("c1.global.txt", directory / "c1.global.txt", 4, "text/plain", f"{url}/c1.global.txt"),
        ExportInfo("tracking.bin", directory / "tracking.bin", 2, "application/octet-stream", f"{url}/tracking.bin"),
    ]
