"""s3://bucket/prefix as a registration path: what is accepted, and that a pasted credential is never echoed."""

import pytest

from spoton_inference.domain.environment import BucketSource, Environment, FloorMap, is_bucket_uri, parse_bucket_uri
from spoton_inference.domain.errors import InvalidArgument


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://recordings/sites/lobby", "recordings", "sites/lobby"),
        ("s3://recordings/sites/lobby/", "recordings", "sites/lobby"),
        ("S3://rec.example-1/a", "rec.example-1", "a"),
        ("s3://recordings", "recordings", ""),
    ],
)
def test_a_bucket_uri_names_bucket_and_prefix(uri, bucket, prefix):
    assert is_bucket_uri(uri)
    assert parse_bucket_uri(uri) == BucketSource(bucket, prefix)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("s3://Recordings/a", "not a valid bucket name"),
        ("s3://ab/a", "not a valid bucket name"),
        ("s3://rec/a//b", "without empty"),
        ("s3://rec/a/../b", "'..'"),
        ("s3://rec/a\nb", "control characters"),
        ("s3://rec/" + "a" * 1000, "at most 900"),
        ("/data/site", "is not an s3:// URI"),
    ],
)
def test_a_bad_bucket_uri_is_refused_with_the_reason(uri, reason):
    with pytest.raises(InvalidArgument, match=reason):
        parse_bucket_uri(uri)


def test_credentials_pasted_into_the_uri_are_refused_and_never_echoed():
    with pytest.raises(InvalidArgument) as caught:
        parse_bucket_uri("s3://AKIAEXAMPLE:very-secret@recordings/site")
    message = str(caught.value)
    assert "very-secret" not in message and "AKIAEXAMPLE" not in message
    assert "SPOTON_S3_ACCESS_KEY_ID" in message


def test_an_environment_from_a_bucket_shows_its_uri_as_source():
    env = Environment("e", "E", FloorMap(), (), bucket=BucketSource("rec", "sites/lobby"))
    assert env.source == "s3://rec/sites/lobby"
    assert BucketSource("rec", "").uri == "s3://rec"


def test_a_pasted_presigned_url_is_refused_without_echoing_its_signature():
    with pytest.raises(InvalidArgument, match="is not an s3:// URI") as caught:
        parse_bucket_uri("https://s3.example/rec/site?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=5f3cabcdef")
    assert "AKIAEXAMPLE" not in str(caught.value) and "5f3cabcdef" not in str(caught.value)
