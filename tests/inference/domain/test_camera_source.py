"""Camera sources: credentials are moved out of URLs, kept or removed on update, and masked."""

import pytest

from spoton_inference.domain.camera_source import CameraSource, SourceInput, SourceKind, resolve_source
from spoton_inference.domain.errors import InvalidFields

RTSP = SourceKind.RTSP


def test_credentials_in_the_url_move_into_their_fields():
    source = resolve_source(SourceInput(RTSP, "rtsp://admin:s3cr%3At@cam.local:554/live"), None)
    assert (source.url, source.username, source.password) == ("rtsp://cam.local:554/live", "admin", "s3cr:t")
    assert source.password_set and source.masked_url == "rtsp://admin:****@cam.local:554/live"
    assert "s3cr" not in repr(source)
    assert source.decoder_url() == "rtsp://admin:s3cr%3At@cam.local:554/live"


def test_an_omitted_password_keeps_the_stored_one_and_an_empty_one_removes_it():
    stored = CameraSource(RTSP, "rtsp://cam/live", "admin", "secret")
    kept = resolve_source(SourceInput(None, "rtsp://cam/other", "admin"), stored)
    assert (kept.kind, kept.url, kept.password) == (RTSP, "rtsp://cam/other", "secret")
    cleared = resolve_source(SourceInput(None, "rtsp://cam/live", "admin", ""), stored)
    assert not cleared.password_set and cleared.masked_url == "rtsp://admin@cam/live"
    # A source that is no longer pulled drops its credentials.
    assert resolve_source(SourceInput(SourceKind.PUSH), stored) == CameraSource(SourceKind.PUSH)


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        (SourceInput(None, "rtsp://cam/live"), "source.kind", "kind is required"),
        (SourceInput(RTSP), "source.url", "url is required"),
        (SourceInput(RTSP, "http://cam/live"), "source.url", "rtsp or rtsps"),
        (SourceInput(SourceKind.HTTP, "rtsp://cam/live"), "source.url", "http or https"),
        (SourceInput(RTSP, "rtsp:///live"), "source.url", "no host"),
        (SourceInput(RTSP, "rtsp://cam:port/live"), "source.url", "not a valid URL"),
        (SourceInput(RTSP, "rtsp://u:p@cam/live", "v"), "source.username", "give them once"),
        (SourceInput(SourceKind.PUSH, "rtsp://cam/live"), "source.url", "not push"),
    ],
)
def test_bad_sources_name_the_field_and_never_quote_the_url(given, field, message):
    with pytest.raises(InvalidFields) as err:
        resolve_source(given, None)
    assert err.value.errors[0][0] == field and message in str(err.value)
    assert "cam/live" not in str(err.value)


def test_a_live_source_from_its_url_alone():
    source = CameraSource.from_url("https://viewer:pw@cam.local/mjpeg")
    assert (source.kind, source.is_live, source.url, source.username) == (
        SourceKind.HTTP,
        True,
        "https://cam.local/mjpeg",
        "viewer",
    )
    assert not CameraSource(SourceKind.PUSH).is_live
    with pytest.raises(InvalidFields, match="must start with"):
        CameraSource.from_url("ftp://cam/x")


@pytest.mark.parametrize(
    "moved_to",
    ["rtsp://attacker.example/live", "rtsp://cam:8554/live", "rtsps://cam/live", "rtsp://10.9.9.9/live"],
)
def test_a_stored_password_is_dropped_when_the_source_moves_to_another_origin(moved_to):
    stored = CameraSource(RTSP, "rtsp://cam/live", "admin", "secret", (("token", "t0k"),))
    moved = resolve_source(SourceInput(None, moved_to, "admin"), stored)
    assert (moved.password, moved.query_secrets, moved.password_set) == ("", (), False)
    assert "secret" not in moved.decoder_url()
    # The default port is the same origin as no port.
    assert resolve_source(SourceInput(None, "rtsp://cam:554/other", "admin"), stored).password == "secret"


def test_query_string_credentials_are_kept_apart_and_masked_like_user_info():
    source = resolve_source(SourceInput(SourceKind.HTTP, "http://cam/snap.cgi?user=admin&pwd=s3cr%26t&res=hd"), None)
    assert source.url == "http://cam/snap.cgi?user=admin&pwd=****&res=hd"
    assert source.masked_url == "http://cam/snap.cgi?user=admin&pwd=****&res=hd" and source.password_set
    assert "s3cr" not in repr(source)
    assert source.decoder_url() == "http://cam/snap.cgi?user=admin&pwd=s3cr%26t&res=hd"
    # The URL as shown ("****") keeps the stored value; a new value replaces it.
    kept = resolve_source(SourceInput(None, source.url), source)
    assert kept.decoder_url() == source.decoder_url()
    changed = resolve_source(SourceInput(None, "http://cam/snap.cgi?user=admin&pwd=new&res=hd"), source)
    assert changed.decoder_url().endswith("pwd=new&res=hd")
    # "****" for a value never stored (or no longer: another host) is refused, not sent.
    with pytest.raises(InvalidFields, match="has no stored value"):
        resolve_source(SourceInput(None, "http://other/snap.cgi?pwd=****"), source)
