"""bench/storage_query.py measures a heatmap over what it inserted, on real PostgreSQL, and cleans up.
(No timing threshold here: the speed target is the benchmark's business.)"""

from __future__ import annotations

import asyncpg
from storage_query import measure_heatmap

from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.settings import Settings


async def test_measure_heatmap_counts_every_row_and_leaves_nothing_behind(make_data_dir):
    server = EmbeddedPostgres(Settings(data_dir=make_data_dir("bench-storage")))
    await server.start()
    try:
        result = await measure_heatmap(server.dsn, rows=3000, runs=2)
        assert result["rows"] == result["counted"] == 3000
        assert result["cells"] > 100 and len(result["heatmap_runs_s"]) == 2
        assert result["png_size"][0] == 800 and result["heatmap_median_s"] > 0
        conn = await asyncpg.connect(server.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM track_points") == 0
            assert await conn.fetchval("SELECT count(*) FROM environments") == 0
        finally:
            await conn.close()
    finally:
        await server.stop()
