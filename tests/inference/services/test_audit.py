"""The audit log: who did what, recorded by the services into PostgreSQL, read newest first."""

from __future__ import annotations

import datetime as dt

import pytest

from spoton_inference.domain.errors import InvalidArgument, NotFound
from spoton_inference.domain.principal import Principal, Role, reset_current_principal, set_current_principal
from spoton_inference.files import environment_dir
from spoton_inference.services.audit import MAX_TARGET_CHARS, Audit, AuditAction
from spoton_inference.services.catalog import Catalog, EnvironmentPatch, EnvironmentSpec
from spoton_inference.storage.audit_store import AuditStore
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore

ALICE = Principal("alice", Role.ADMIN, frozenset(), "key-alice", "api_key")
BOB = Principal("bob", Role.OPERATOR, frozenset(), "user:bob", "token")


@pytest.fixture
async def audit(db):
    async with db.pool.acquire() as conn:
        await conn.execute("DELETE FROM audit_events")
    return Audit(AuditStore(db), retention_days=30)


async def as_(principal: Principal, call):
    token = set_current_principal(principal)
    try:
        return await call
    finally:
        reset_current_principal(token)


async def test_catalogue_changes_name_who_made_them_and_how_they_ended(db, audit):
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir, audit=audit)
    await as_(ALICE, catalog.create_environment(EnvironmentSpec("audit-hall", "Hall")))
    await as_(BOB, catalog.update_environment("audit-hall", EnvironmentPatch(name="Main hall")))
    with pytest.raises(NotFound):
        await as_(BOB, catalog.delete_environment("audit-nowhere"))

    events, token = await audit.list()
    assert token == ""
    assert [(e.actor, e.actor_kind, e.credential_id, e.role, e.action, e.target, e.outcome) for e in events] == [
        ("bob", "token", "user:bob", "operator", "environment.delete", "environment/audit-nowhere", "failed: NotFound"),
        ("bob", "token", "user:bob", "operator", "environment.update", "environment/audit-hall", "ok"),
        ("alice", "api_key", "key-alice", "admin", "environment.create", "environment/audit-hall", "ok"),
    ]
    assert all(abs(e.at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1) for e in events)


async def test_an_error_is_recorded_by_kind_never_by_its_message(db, audit):
    # A message may quote what the caller sent: only the error's kind is kept.
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir, audit=audit)
    with pytest.raises(InvalidArgument) as refused:
        await as_(ALICE, catalog.create_environment(EnvironmentSpec("x" * 1000, "Hall")))
    (event,) = (await audit.list())[0]
    assert event.outcome == "failed: InvalidArgument"
    assert str(refused.value) not in repr(event)
    assert len(event.target) <= MAX_TARGET_CHARS  # what a caller sent is bounded too


async def test_credential_use_is_recorded_for_a_principal_not_yet_current(audit):
    await audit.record(
        AuditAction.AUTH_LOGIN,
        "user/carol",
        principal=Principal("carol", Role.VIEWER, frozenset(), "user:carol", "token"),
    )
    (event,) = (await audit.list(actor="carol"))[0]
    assert (event.action, event.target, event.role) == ("auth.login", "user/carol", "viewer")


async def test_pages_are_newest_first_and_filter_by_actor_and_action(audit):
    for i in range(5):
        await as_(ALICE, audit.record(AuditAction.TASK_START, f"task/{i}"))
        await as_(BOB, audit.record(AuditAction.TASK_CANCEL, f"task/{i}"))

    seen, token = [], ""
    while True:
        page, token = await audit.list(page_size=2, page_token=token, actor="alice")
        seen += page
        if not token:
            break
    assert [e.target for e in seen] == [f"task/{i}" for i in reversed(range(5))]
    assert {e.action for e in seen} == {"task.start"}

    cancels, _ = await audit.list(action="task.cancel")
    assert [(e.actor, e.target) for e in cancels] == [("bob", f"task/{i}") for i in reversed(range(5))]
    with pytest.raises(InvalidArgument, match="page_token"):
        await audit.list(page_token="not-a-token")


async def test_rows_past_retention_are_deleted(db, audit):
    store = AuditStore(db)
    await as_(ALICE, audit.record(AuditAction.JOB_DELETE, "job/old"))
    async with db.pool.acquire() as conn:
        await conn.execute("UPDATE audit_events SET at = now() - interval '31 days'")
    # A new Audit prunes on its first write; rows inside retention stay.
    await as_(ALICE, Audit(store, retention_days=30).record(AuditAction.JOB_DELETE, "job/new"))
    assert [e.target for e in (await audit.list())[0]] == ["job/new"]


async def test_a_failed_write_does_not_fail_the_action(db, audit, caplog):
    class Gone:
        async def record(self, event):
            raise ConnectionError("PostgreSQL is away")

    gone = Audit(Gone(), retention_days=30)  # type: ignore[arg-type]
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir, audit=gone)
    env = await as_(ALICE, catalog.create_environment(EnvironmentSpec("audit-yard", "Yard")))
    assert env.environment_id == "audit-yard"
    assert "not recorded" in caplog.text
