"""Secrets at rest: Fernet-sealed camera passwords, key rotation, generated owner-only files."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from spoton_inference.services.secrets import SecretBox, SecretKeyError, read_or_create_secret, secret_path


def _key() -> str:
    return Fernet.generate_key().decode()


def test_sealed_secrets_open_only_with_a_configured_key():
    old = _key()
    token = SecretBox.from_keys([old]).seal("pa55")
    assert "pa55" not in token and SecretBox.from_keys([old]).open(token) == "pa55"
    with pytest.raises(SecretKeyError, match="put back the key") as err:
        SecretBox.from_keys([_key()]).open(token, "the password of camera 'c1'")
    assert "camera 'c1'" in str(err.value) and token not in str(err.value)


def test_rotation_new_key_first_then_the_old_one_dropped():
    old, new = _key(), _key()
    token = SecretBox.from_keys([old]).seal("pa55")
    both = SecretBox.from_keys([new, old])
    assert both.open(token) == "pa55" and not both.is_current(token)
    rotated = both.rotate(token)
    assert both.is_current(rotated)
    assert SecretBox.from_keys([new]).open(rotated) == "pa55"


def test_a_malformed_key_is_refused_without_quoting_it():
    with pytest.raises(SecretKeyError, match="key #2 is not a Fernet key") as err:
        SecretBox.from_keys([_key(), "not-a-key-but-secret"])
    assert "not-a-key-but-secret" not in str(err.value)


def test_without_keys_one_is_generated_once_owner_only(tmp_path):
    box = SecretBox.for_data_dir((), tmp_path)
    token = box.seal("pa55")
    key_file = secret_path(tmp_path, "secret_key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert SecretBox.for_data_dir((), tmp_path).open(token) == "pa55"  # the same key after a restart
    assert read_or_create_secret(key_file, lambda: "other") == key_file.read_text().strip()
