"""The bootstrap admin key, on a fresh database of the embedded PostgreSQL: created and shown
once on first start, kept owner-only for the local tools; a configured key replaces it."""

from __future__ import annotations

import dataclasses
import stat
from typing import cast

import pytest

from spoton_inference.auth_setup import BOOTSTRAP_BANNER, admin_key_path, bootstrap_admin, build_authenticator
from spoton_inference.domain.errors import InvalidArgument, Unauthenticated
from spoton_inference.domain.principal import Role
from spoton_inference.services.auth import new_api_key
from spoton_inference.settings import Settings
from spoton_inference.storage.postgres import Database


async def test_the_first_start_creates_an_admin_key_and_shows_it_once(service_settings, capsys):
    # Neither the admin key nor the token secret configured: both are made on the first start.
    settings = dataclasses.replace(await service_settings("spoton_bootstrap"), admin_api_key="", jwt_secret="")
    db = await Database.connect(settings.postgres_dsn)
    try:
        auth = build_authenticator(settings, db)
        assert auth is not None
        await bootstrap_admin(auth, settings)
        shown = capsys.readouterr().err
        path = admin_key_path(settings.data_dir)
        key = path.read_text().strip()
        assert f"{BOOTSTRAP_BANNER}: {key}" in shown and str(path) in shown
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert (await auth.authenticate(key)).role == Role.ADMIN
        # And the dashboard's admin user, its password shown once and kept owner-only.
        password_path = settings.data_dir / "secrets" / "admin_password"
        assert f"admin / {password_path.read_text().strip()}" in shown
        assert stat.S_IMODE(password_path.stat().st_mode) == 0o600

        # A restart (a new authenticator, as a new process) shows nothing and keeps the key.
        again = build_authenticator(settings, db)
        assert again is not None
        await bootstrap_admin(again, settings)
        assert capsys.readouterr().err == "" and path.read_text().strip() == key
        assert (await again.authenticate(key)).role == Role.ADMIN

        # SPOTON_ADMIN_API_KEY takes over: the generated key is revoked, nothing is shown.
        chosen = new_api_key().text
        configured = dataclasses.replace(settings, admin_api_key=chosen)
        third = build_authenticator(configured, db)
        assert third is not None
        await bootstrap_admin(third, configured)
        assert capsys.readouterr().err == ""
        assert (await third.authenticate(chosen)).role == Role.ADMIN
        with pytest.raises(Unauthenticated, match="revoked"):
            await third.authenticate(key)
        # The JWT signing secret was generated once, owner-only, and is the same for all three.
        secret = settings.data_dir / "secrets" / "jwt_secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600

        with pytest.raises(InvalidArgument, match="SPOTON_ADMIN_API_KEY must have the form"):
            await bootstrap_admin(third, dataclasses.replace(settings, admin_api_key="letmein"))
    finally:
        await db.close()


def test_authentication_can_be_turned_off_for_local_development(tmp_path):
    settings = Settings(data_dir=tmp_path, auth_enabled=False)
    assert build_authenticator(settings, cast(Database, None)) is None  # never reaches the database
