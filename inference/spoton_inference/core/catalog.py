"""The environment catalogue: registered environments, with their homographies cached.

PostgreSQL is the record; the in-memory cache is filled at start-up and on every change,
so tasks and health never parse homographies on the frame path.
"""

from __future__ import annotations

from pathlib import Path

from spoton_inference.core.environment import Environment, load_environment_dir
from spoton_inference.core.errors import InvalidArgument, NotFound
from spoton_inference.storage.postgres import Database


class Catalog:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, Environment] = {}
        self.loaded = False

    async def load(self) -> None:
        self._cache = {e.environment_id: e for e in await self._db.list_environments()}
        self.loaded = True

    async def register_directory(self, path: str) -> Environment:
        if not path:
            raise InvalidArgument("path is required: a directory holding environment.json")
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise NotFound(f"no such directory on the server: {path}")
        env = load_environment_dir(directory)
        if env.num_batches == 0:
            raise InvalidArgument(f"{directory} has no cameras/<id>/sub_video_NN.mp4 files")
        await self._db.upsert_environment(env)
        self._cache[env.environment_id] = env
        return env

    def list(self) -> list[Environment]:
        return [self._cache[k] for k in sorted(self._cache)]

    def get(self, environment_id: str) -> Environment:
        env = self._cache.get(environment_id)
        if env is None:
            known = ", ".join(sorted(self._cache)) or "none registered"
            raise NotFound(f"environment {environment_id!r} not found (known: {known})")
        return env
