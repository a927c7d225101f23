"""The ``spoton`` command line.

- ``spoton process ENV_DIR --out DIR``: one task over an environment directory, using the
  stack in ``var/stack.json`` when one is up, else an embedded stack started for the run;
- ``spoton demo``: generate the demo environment, process it, score it against its ground
  truth, print a summary, and shut down;
- ``spoton serve``: keep the embedded stack up in the foreground, with the demo registered;
- ``spoton track SOURCE --out DIR``: track a video file, a folder of videos (one camera each) or
  an RTSP URL (``spoton_client.track``);
- ``spoton eval --gt GT --run DIR``: HOTA, MOTA, IDF1 and map error against ground truth
  (``spoton_client.evaluate``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from spoton_client import evaluate, track
from spoton_client.auth import how_to_authenticate
from spoton_client.client import SpotOnClient
from spoton_client.process import ProcessResult, process_environment


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="spoton", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="run one task over an environment directory (or s3://bucket/prefix)")
    p.add_argument("env_dir", type=_environment_arg)
    p.add_argument("--out", type=Path, required=True, help="where the exports are written")
    p.add_argument("--cameras", nargs="*", help="a subset of camera ids (default: all)")
    p.add_argument("--target", help="gRPC target of a running SpotOn (default: var/stack.json, else embedded)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--api-key", help="the key to call SpotOn with (default: SPOTON_API_KEY, else the local admin key)")

    d = sub.add_parser("demo", help="generate, process and score the demo environment")
    d.add_argument("--dir", type=Path, help="where the demo environment and exports go (default: var/demo)")

    s = sub.add_parser("serve", help="run the embedded stack in the foreground until Ctrl-C")
    s.add_argument("--env-dir", type=Path, help="environment to register (default: the generated demo)")
    s.add_argument("--stack-file", type=Path, help="where to write the endpoints (default: var/stack.json)")

    track.add_arguments(sub.add_parser("track", help="track a video file, a folder of videos or an RTSP URL"))
    evaluate.add_arguments(sub.add_parser("eval", help="score a run's MOT files against MOTChallenge ground truth"))

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "process":
            asyncio.run(_process(args))
        elif args.command == "demo":
            asyncio.run(_demo(args.dir))
        elif args.command == "track":
            sys.exit(asyncio.run(track.run_command(args)))
        elif args.command == "eval":
            sys.exit(evaluate.run_command(args))
        else:
            from spoton_client.serve import serve

            asyncio.run(serve(args.env_dir, args.stack_file))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # A taken SPOTON_FACADE_PORT/SPOTON_GRPC_PORT explains itself in one line; the rest keeps its traceback.
        if type(exc).__name__ != "PortUnavailable":
            raise
        sys.exit(f"spoton {args.command}: {exc}")


def _environment_arg(value: str) -> str | Path:
    # An s3:// URI stays a string: as a Path its '//' would collapse.
    return value if value[:5].lower() == "s3://" else Path(value)


async def _process(args: argparse.Namespace) -> None:
    if args.target:
        async with SpotOnClient(args.target, api_key=args.api_key) as client:
            result = await process_environment(client, args.env_dir, args.out, args.cameras, not args.no_progress)
    else:
        from spoton_inference.launch import local_api_key, stack_for_run
        from spoton_inference.settings import Settings

        settings = Settings.from_env()
        async with (
            stack_for_run(settings) as endpoints,
            SpotOnClient(endpoints.grpc_target, api_key=args.api_key or local_api_key(settings)) as client,
        ):
            result = await process_environment(client, args.env_dir, args.out, args.cameras, not args.no_progress)
    _print_result(result)
    if result.state != "completed":
        sys.exit(1)


async def _demo(demo_dir: Path | None) -> None:
    from spoton_client.demo import DEFAULT_DEMO_DIR, Browse, ensure_demo_environment, print_demo_summary, score
    from spoton_inference.embedded.endpoints import Listen, local_url
    from spoton_inference.embedded.ports import PortUnavailable
    from spoton_inference.embedded.stackfile import find_live_stack
    from spoton_inference.launch import local_api_key, stack_for_run
    from spoton_inference.settings import Settings

    demo_dir = demo_dir or DEFAULT_DEMO_DIR
    env_dir = ensure_demo_environment(demo_dir / "env")
    out_dir = demo_dir / "out"
    settings = Settings.from_env()
    try:
        async with (
            stack_for_run(settings) as endpoints,
            SpotOnClient(endpoints.grpc_target, api_key=local_api_key(settings)) as client,
        ):
            result = await process_environment(client, env_dir, out_dir)
    except PortUnavailable as exc:
        sys.exit(f"spoton demo: {exc}")
    per_camera, cross = score(env_dir, out_dir, list(result.camera_ids))
    # A running `spoton serve` (found through var/stack.json) is still up; a stack started for
    # this run is gone, so point at where `make serve` will put the dashboard instead.
    if await find_live_stack() == endpoints:
        browse = Browse(endpoints.facade_url, running=True)
    else:
        serve = Listen.configured(settings)
        browse = Browse(local_url(serve.facade_host, serve.facade_port) if serve.facade_port else "", running=False)
    print_demo_summary(result, per_camera, cross, out_dir, browse, how_to_authenticate(settings.data_dir))
    if result.state != "completed":
        sys.exit(1)


def _print_result(result: ProcessResult) -> None:
    print(f"task {result.task_id}: {result.state}{' - ' + result.error if result.error else ''}")
    print(f"  frames {result.frames}, local tracks {result.local_tracks}, global ids {result.global_ids}")
    print(f"  exports: {', '.join(str(p) for p in result.exports)}")


if __name__ == "__main__":
    main()
