"""Running the scenes through the real service: one stack for the whole benchmark (the one
in ``var/stack.json`` when it is up, else an embedded one), one task per scene."""

from __future__ import annotations

import shutil
from pathlib import Path

from spoton_client.client import SpotOnClient
from spoton_client.process import ProcessResult, process_environment
from spoton_inference.launch import local_api_key, stack_for_run
from spoton_inference.settings import Settings


async def process_scenes(
    env_dirs: dict[str, Path], out_dirs: dict[str, Path], settings: Settings
) -> dict[str, ProcessResult]:
    """Process every scene of ``env_dirs`` into its ``out_dirs`` entry; a failed task is fatal."""
    results: dict[str, ProcessResult] = {}
    async with (
        stack_for_run(settings) as endpoints,
        SpotOnClient(endpoints.grpc_target, api_key=local_api_key(settings)) as client,
    ):
        for name, env_dir in env_dirs.items():
            # Exports of an earlier run must not survive under a camera this run lacks.
            shutil.rmtree(out_dirs[name], ignore_errors=True)
            print(f"processing scene {name} ...", flush=True)
            result = await process_environment(client, env_dir, out_dirs[name])
            if result.state != "completed":
                raise RuntimeError(f"scene {name}: task {result.task_id} ended {result.state}: {result.error}")
            results[name] = result
    return results
