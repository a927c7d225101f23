"""docker-compose.yml and the settings the code reads must agree."""

import re
from pathlib import Path

import yaml

from spoton_facade.settings import FacadeSettings
from spoton_facade.settings import env_name as facade_env_name
from spoton_inference.compose_secrets import generate
from spoton_inference.settings import FILE_SUFFIX, Settings, env_names

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def _published(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def test_the_production_services_are_all_there():
    assert set(SERVICES) == {"triton", "timescaledb", "redis", "inference", "facade", "mosquitto", "minio"}
    assert "tritonserver" in (REPO / SERVICES["triton"]["build"]["dockerfile"]).read_text()
    assert "timescaledb" in SERVICES["timescaledb"]["image"]
    assert "minio" in SERVICES["minio"]["image"] and "minio" in SERVICES["inference"]["depends_on"]


def _given(env: dict[str, str]) -> set[str]:
    """The settings an environment gives, by value or (``_FILE``) by a secret file."""
    return {name.removesuffix(FILE_SUFFIX) for name in env}


def test_every_setting_is_set_for_the_services_that_read_it():
    assert set(env_names()) <= _given(_env("inference"))
    import dataclasses

    assert {facade_env_name(f.name) for f in dataclasses.fields(FacadeSettings)} <= set(_env("facade"))


def test_every_spoton_variable_named_in_the_code_is_in_the_compose_file():
    names = set()
    for package in ("inference", "facade", "clients"):
        for path in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r"[\"']\$?\{?(SPOTON_[A-Z0-9_]+)", path.read_text()))
    assert names, "the scan found no settings at all"
    # The command line's own, not service settings: the key it sends (spoton_client.auth), where it
    # finds a running local stack (embedded.stackfile) and its TrackEval venv (spoton_client.trackeval_env).
    client_only = {"SPOTON_API_KEY", "SPOTON_STACK_FILE", "SPOTON_TRACKEVAL_VENV"}
    given = _given(_env("inference"))
    assert names <= given | {"SPOTON_"} | client_only, sorted(names - given)


def test_secrets_come_from_files_the_generator_writes_and_compose_mounts(tmp_path):
    written = generate(tmp_path / "secrets")
    declared = {name: Path(spec["file"]).name for name, spec in COMPOSE["secrets"].items()}
    assert set(declared.values()) == set(written) | {"postgres_password", "redis_password"}
    assert all(Path(spec["file"]).parent.name == "secrets" for spec in COMPOSE["secrets"].values())
    mounted = {name for service in SERVICES.values() for name in service.get("secrets", [])}
    assert mounted == set(declared)
    files = [value for name, value in _env("inference").items() if name.endswith(FILE_SUFFIX)]
    assert files and all(Path(f).parent == Path("/run/secrets") for f in files)
    assert {Path(f).name for f in files} <= set(SERVICES["inference"]["secrets"])
    assert generate(tmp_path / "secrets") == []  # kept, not replaced


def _resolved(env: dict[str, str], secrets_dir: Path) -> dict[str, str]:
    """The inference environment with /run/secrets/<name> read from ``secrets_dir``."""
    return {k: v.replace("/run/secrets", str(secrets_dir)) if k.endswith(FILE_SUFFIX) else v for k, v in env.items()}


def test_settings_parse_the_compose_values_and_ports_line_up(tmp_path):
    generate(tmp_path)
    s = Settings.from_env(_resolved(_env("inference"), tmp_path))
    assert s.admin_api_key.startswith("spk_") and s.secret_keys and s.jwt_secret
    password = (tmp_path / "postgres_password").read_text().strip()
    assert f"spoton:{password}@" in s.postgres_dsn
    assert s.grpc_port in _published("inference")
    assert s.facade_port in _published("facade")
    assert int(s.triton_grpc_url.rsplit(":", 1)[1]) in _published("triton")
    assert s.inference_target == f"inference:{s.grpc_port}"
    assert "timescaledb:5432" in s.postgres_dsn and "redis:6379" in s.redis_url
    f = FacadeSettings.from_env(_env("facade"))
    # Inside the containers both must bind every interface, or the published ports reach nothing.
    assert s.bind_host == s.grpc_host == "0.0.0.0" and f.facade_host == "0.0.0.0"
    assert f.inference_target == s.inference_target and f.media_root == s.media_root
