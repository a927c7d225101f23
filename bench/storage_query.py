"""Heatmap query speed over 1 million track points (target: under 1 s).

    .venv/bin/python bench/storage_query.py [--rows 1000000] [--runs 5]

The CLI starts a throwaway embedded PostgreSQL (the same wheel and settings the service
uses), migrates it, COPYs ``--rows`` track points of one environment (4 cameras, people
around a few busy spots of a 30 m x 20 m floor, one hour of video time) and times
``Analytics.heatmap`` (validation, the SQL GROUP BY over grid cells, the cells to numpy)
over all of them at 0.5 m cells: one warm-up run, then the median of ``--runs``. The PNG
rendering over the floor plan is timed the same way, apart.

``measure_heatmap(dsn)`` does the same against any migrated-or-empty database and removes
what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from spoton_inference.domain.errors import NotFound
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.files import environment_dir, heatmap_png
from spoton_inference.services.analytics import Analytics, TimeRange
from spoton_inference.services.catalog import CameraSpec, Catalog, EnvironmentSpec
from spoton_inference.settings import Settings
from spoton_inference.storage.analytics_store import AnalyticsStore
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.task_store import TaskStore

TARGET_S = 1.0
CELL_SIZE_M = 0.5
FLOOR_M = (30.0, 20.0)
CAMERAS = ("c1", "c2", "c3", "c4")
COPY_BATCH = 100_000
BOX = (100.0, 100.0, 140.0, 220.0, 0.8)  # x1, y1, x2, y2, score: not what a heatmap reads


def _track_points(task: uuid.UUID, environment_id: str, n: int, start: float, seed: int = 0) -> list[tuple]:
    """``n`` rows: 70 % around 6 busy spots, the rest anywhere on the floor, over one hour."""
    import datetime as dt

    rng = np.random.default_rng(seed)
    spots = rng.uniform((2, 2), (FLOOR_M[0] - 2, FLOOR_M[1] - 2), (6, 2))
    busy = int(n * 0.7)
    xy = np.vstack(
        [
            spots[rng.integers(0, len(spots), busy)] + rng.normal(0, 1.2, (busy, 2)),
            rng.uniform((0, 0), FLOOR_M, (n - busy, 2)),
        ]
    )
    rng.shuffle(xy)
    seconds = np.sort(rng.uniform(0, 3600, n))
    frames = (seconds * 10).astype(np.int64)
    cameras = rng.integers(0, len(CAMERAS), n)
    gids = rng.integers(1, 400, n)
    t0 = dt.datetime.fromtimestamp(start, dt.UTC)
    return [
        (t0 + dt.timedelta(seconds=float(s)), task, environment_id, CAMERAS[c], int(f), int(g), int(g), *BOX, x, y)
        for s, f, c, g, (x, y) in zip(seconds, frames, cameras, gids, xy.tolist(), strict=True)
    ]


def _camera(camera_id: str, k: int) -> CameraSpec:
    # Each camera sees a quarter of the floor: image corners onto a 15 m x 10 m rectangle.
    x0, y0 = (k % 2) * 15.0, (k // 2) * 10.0
    image = ((0, 0), (640, 0), (640, 480), (0, 480))
    ground = ((x0, y0), (x0 + 15, y0), (x0 + 15, y0 + 10), (x0, y0 + 10))
    return CameraSpec(camera_id, fps=10, width=640, height=480, homography=HomographySpec(image, ground))


async def _no_task_scope(task_id: str) -> TaskRecord:
    """The heatmap measured here is environment-wide: no query is scoped to a task."""
    raise NotFound(f"task {task_id}: this benchmark queries whole environments")


async def _timed(call, runs: int) -> tuple[float, list[float], object]:
    result = await call()  # warm-up: caches, hint bits, the prepared statement
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = await call()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, result


async def measure_heatmap(dsn: str, *, rows: int = 1_000_000, runs: int = 5) -> dict:
    """Insert ``rows`` track points with COPY, time the heatmap over them, then remove them."""
    db = await Database.connect(dsn, max_size=4)
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
    await catalog.load()
    environment_id = f"bench-heatmap-{uuid.uuid4().hex[:8]}"
    await catalog.create_environment(
        EnvironmentSpec(environment_id, cameras=tuple(_camera(c, k) for k, c in enumerate(CAMERAS)))
    )
    task = uuid.uuid4()
    try:
        points = _track_points(task, environment_id, rows, time.time() - 3600)
        t = time.perf_counter()
        for i in range(0, rows, COPY_BATCH):
            await TaskStore(db).copy_track_points(points[i : i + COPY_BATCH])
        insert_s = time.perf_counter() - t
        del points
        async with db.pool.acquire() as conn:
            await conn.execute("ANALYZE track_points")  # what autovacuum does after a bulk load

        analytics = Analytics(AnalyticsStore(db), catalog, _no_task_scope, paint_heatmap=heatmap_png.paint)
        whole = TimeRange()
        median_s, times, heat = await _timed(
            lambda: analytics.heatmap(environment_id, cell_size_m=CELL_SIZE_M, span=whole), runs
        )
        png_s, _, with_png = await _timed(
            lambda: analytics.heatmap(environment_id, cell_size_m=CELL_SIZE_M, span=whole, render_png=True), runs
        )
        return {
            "rows": rows,
            "copy_s": round(insert_s, 2),
            "copy_rows_per_s": round(rows / insert_s),
            "cell_size_m": CELL_SIZE_M,
            "cells": len(heat.count),
            "counted": heat.total,
            "heatmap_median_s": round(median_s, 4),
            "heatmap_runs_s": [round(x, 4) for x in times],
            "heatmap_png_median_s": round(png_s, 4),
            "png_size": list(with_png.png_size),
            "target_s": TARGET_S,
            "ratio_to_target": round(median_s / TARGET_S, 3),
            "ok": median_s < TARGET_S and heat.total == rows,
        }
    finally:
        async with db.pool.acquire() as conn:
            await conn.execute("DELETE FROM track_points WHERE environment_id = $1", environment_id)
        await catalog.delete_environment(environment_id)
        await db.close()


def print_heatmap(result: dict) -> None:
    print(
        f"heatmap over {result['rows']:,} track points ({result['cells']} cells of {CELL_SIZE_M} m): "
        f"median {result['heatmap_median_s'] * 1000:.0f} ms of {len(result['heatmap_runs_s'])} runs "
        f"({result['ratio_to_target']:.2f} x the {TARGET_S:.0f} s target) "
        f"{'PASS' if result['ok'] else 'FAIL'}"
    )
    print(
        f"  with the PNG ({result['png_size'][0]}x{result['png_size'][1]}): "
        f"median {result['heatmap_png_median_s'] * 1000:.0f} ms; "
        f"COPY of the rows: {result['copy_s']} s ({result['copy_rows_per_s']:,} rows/s)"
    )


async def _main(rows: int, runs: int, out: Path | None) -> int:
    with tempfile.TemporaryDirectory(prefix="spoton-bench-storage-") as tmp:
        server = EmbeddedPostgres(Settings(data_dir=Path(tmp)))
        await server.start()
        try:
            result = await measure_heatmap(server.dsn, rows=rows, runs=runs)
        finally:
            await server.stop()
    print_heatmap(result)
    if out is not None:
        out.write_text(json.dumps(result, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    return asyncio.run(_main(args.rows, args.runs, args.json))


if __name__ == "__main__":
    raise SystemExit(main())
