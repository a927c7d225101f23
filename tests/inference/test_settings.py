from pathlib import Path

import pytest

from spoton_inference.settings import Settings


def test_round_trip_through_the_environment():
    s = Settings.from_env({"SPOTON_GRPC_PORT": "6001", "SPOTON_CORS_ALLOW_ORIGINS": "http://a, http://b"})
    assert s.grpc_port == 6001 and s.cors_allow_origins == ("http://a", "http://b")
    assert Settings.from_env(s.to_env()) == s


def test_media_root_follows_the_data_dir_unless_set():
    assert Settings.from_env({"SPOTON_DATA_DIR": "/srv/x"}).media_root == Path("/srv/x/media")
    assert Settings.from_env({"SPOTON_MEDIA_ROOT": "/m"}).media_root == Path("/m")


def test_a_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="SPOTON_GRPC_PORT"):
        Settings.from_env({"SPOTON_GRPC_PORT": "http"})


def test_switches_read_the_usual_words_and_refuse_others():
    assert Settings.from_env({"SPOTON_REFINE_RECORDED": "false"}).refine_recorded is False
    assert Settings.from_env({"SPOTON_REFINE_RECORDED": "1"}).refine_recorded is True
    assert Settings.from_env(Settings(reid_self_calibrate=False).to_env()).reid_self_calibrate is False
    with pytest.raises(ValueError, match="SPOTON_REID_SELF_CALIBRATE"):
        Settings.from_env({"SPOTON_REID_SELF_CALIBRATE": "maybe"})


def test_a_secret_may_come_from_a_file_but_not_from_both(tmp_path):
    key = tmp_path / "jwt"
    key.write_text("s3cret-from-a-file\n")  # as an editor or `echo` leaves it
    assert Settings.from_env({"SPOTON_JWT_SECRET_FILE": str(key)}).jwt_secret == "s3cret-from-a-file"
    with pytest.raises(ValueError, match="SPOTON_JWT_SECRET and SPOTON_JWT_SECRET_FILE are both set"):
        Settings.from_env({"SPOTON_JWT_SECRET": "inline", "SPOTON_JWT_SECRET_FILE": str(key)})
