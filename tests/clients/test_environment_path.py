"""`spoton process s3://bucket/prefix`: the URI reaches RegisterEnvironmentFromDirectory as typed,
while a directory is still sent as an absolute path."""

from spoton_client.cli import _environment_arg
from spoton_client.client import environment_path


def test_an_s3_uri_is_sent_as_typed_and_a_directory_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = _environment_arg("s3://recordings/sites/lobby")
    assert environment_path(uri) == "s3://recordings/sites/lobby"
    assert environment_path(_environment_arg("site-a")) == str(tmp_path / "site-a")
