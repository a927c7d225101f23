"""Command line: ``python -m spoton_inference.scenes OUT_DIR [--seed N]``.

Writes the demo scene (:func:`~spoton_inference.scenes.config.demo_config`) into
``OUT_DIR`` and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import time

from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and generate the demo scene."""
    parser = argparse.ArgumentParser(prog="python -m spoton_inference.scenes", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", metavar="OUT_DIR", help="directory to write the scene into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    config = demo_config(seed=args.seed)
    started = time.perf_counter()
    out = generate(config, args.out_dir)
    print(
        f"{out}: {len(config.cameras)} cameras x {config.n_batches} batches x {config.frames_per_batch} frames, "
        f"{config.n_people} people, seed {config.seed}, {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
