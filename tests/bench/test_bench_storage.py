"""The storage bench runs end to end (tiny, on its own throwaway PostgreSQL) and reports every section."""

from __future__ import annotations

import json

import storage


async def test_the_storage_bench_writes_its_report(tmp_path):
    report = await storage.run(rows=3_000, rounds=1, out=tmp_path)
    stored = json.loads((tmp_path / "storage.json").read_text())
    assert stored == json.loads(json.dumps(report))
    assert set(stored["measurements"]) == {name for name, _, _ in storage.MEASUREMENTS}
    writes = stored["measurements"]["writes"]
    assert writes["rows"] == 3_000 and writes["writer_rows_per_s"] > 0 and writes["raw_copy_rows_per_s"] > 0
