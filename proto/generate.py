"""Generate the Python stubs and the .protoset for spoton.v1.

Run as ``python proto/generate.py``; ``make proto`` does. Output goes to ``proto/python``
(a package named ``spoton.v1``) and ``proto/spoton.protoset`` (for grpcurl/ghz ``--protoset``).
The grpcio-tools version is pinned in constraints.txt, so the output is reproducible.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
OUT = HERE / "python"


def main() -> int:
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "spoton" / "v1").glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    (OUT / "spoton" / "v1").mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{well_known}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--descriptor_set_out={HERE / 'spoton.protoset'}",
        "--include_imports",
        "--include_source_info",
        *sources,
    ]
    rc = protoc.main(args)
    if rc != 0:
        return rc
    for pkg in (OUT / "spoton", OUT / "spoton" / "v1"):
        (pkg / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    import os

    os.chdir(HERE)
    sys.exit(main())
