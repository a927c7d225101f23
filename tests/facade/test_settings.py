"""The facade reads the same SPOTON_* variables, with the same defaults, as the inference service."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from spoton_facade.settings import FacadeSettings, env_names


# Added by the facade; the shared Settings is to gain it too.
def test_from_env() -> None:
    settings = FacadeSettings.from_env(
        {
            "SPOTON_FACADE_HOST": "0.0.0.0",
            "SPOTON_FACADE_PORT": "9000",
            "SPOTON_INFERENCE_TARGET": "inference:50051",
            "SPOTON_DATA_DIR": "/srv/spoton",
            "SPOTON_CORS_ALLOW_ORIGINS": "http://a.example, http://b.example,",
            "SPOTON_GRPC_MAX_MESSAGE_BYTES": "1024",
            "SPOTON_SSE_HEARTBEAT_SECONDS": "2.5",
        }
    )
    assert settings == FacadeSettings(
        facade_host="0.0.0.0",
        facade_port=9000,
        inference_target="inference:50051",
        data_dir=Path("/srv/spoton"),
        media_root=Path("/srv/spoton/media"),
        cors_allow_origins=("http://a.example", "http://b.example"),
        grpc_max_message_bytes=1024,
        sse_heartbeat_seconds=2.5,
    )
    assert FacadeSettings.from_env({"SPOTON_MEDIA_ROOT": "/m"}).media_root == Path("/m")


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="SPOTON_FACADE_PORT"):
        FacadeSettings.from_env({"SPOTON_FACADE_PORT": "eighty"})


def test_matches_the_shared_settings() -> None:
    shared_module = pytest.importorskip("spoton_inference.settings")
    shared = shared_module.Settings.from_env({})
    facade = FacadeSettings.from_env({})
    assert set(env_names()) <= set(shared_module.env_names())
    for field in dataclasses.fields(FacadeSettings):
        assert getattr(facade, field.name) == getattr(shared, field.name), field.name
