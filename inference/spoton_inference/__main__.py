"""``python -m spoton_inference serve`` runs the service; see ``--help``."""

from __future__ import annotations

import argparse
from pathlib import Path

from spoton_inference import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m spoton_inference")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gRPC service (settings from SPOTON_* variables)")
    sub.add_parser("new-api-key", help="print a fresh API key, e.g. for SPOTON_ADMIN_API_KEY")
    secrets_cmd = sub.add_parser("compose-secrets", help="generate the secrets docker-compose.yml mounts")
    secrets_cmd.add_argument("directory", type=Path)
    args = parser.parse_args()
    if args.command == "serve":
        serve.main()
    elif args.command == "new-api-key":
        from spoton_inference.services.auth import new_api_key

        print(new_api_key().text)
    elif args.command == "compose-secrets":
        from spoton_inference.compose_secrets import generate

        written = generate(args.directory)
        print(f"{args.directory}: wrote {', '.join(written) or 'nothing (all there already)'}")


if __name__ == "__main__":
    main()
