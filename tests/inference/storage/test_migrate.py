import asyncpg

from spoton_inference.storage.migrate import available_migrations, migrate


async def test_migrations_apply_once_and_are_idempotent(postgres):
    conn = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await conn.execute("DROP DATABASE IF EXISTS migrate_test")
        await conn.execute("CREATE DATABASE migrate_test")
    finally:
        await conn.close()
    conn = await asyncpg.connect(postgres.dsn_for("migrate_test"))
    try:
        first = await migrate(conn)
        assert first == [v for v, _, _ in available_migrations()]
        assert await migrate(conn) == []
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert {"environments", "cameras", "tasks", "task_state_history", "track_points"} <= tables
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
    finally:
        await conn.close()
