"""``python -m spoton_inference.scenes OUT_DIR [--seed N]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoton_inference.scenes import SceneConfig, __main__, demo_config


def test_cli_generates_the_demo_with_the_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    calls: list[tuple[SceneConfig, str]] = []

    def fake_generate(config: SceneConfig, out_dir: str) -> Path:
        calls.append((config, out_dir))
        return Path(out_dir)

    monkeypatch.setattr(__main__, "generate", fake_generate)
    __main__.main([str(tmp_path), "--seed", "5"])
    assert calls == [(demo_config(seed=5), str(tmp_path))]
    assert "seed 5" in capsys.readouterr().out
