from spoton_inference.domain.source_url import mask_text, with_credentials


def test_credentials_round_trip_through_the_url_parser():
    url = with_credentials("rtsp://cam:8554/a/b?x=1", "op@site", "p:w/d@#")
    assert url.startswith("rtsp://op%40site:p%3Aw%2Fd%40%23@cam:8554/a/b?x=1")
    assert "p:w/d@#" not in mask_text(url)
    assert mask_text(url) == "rtsp://op%40site:****@cam:8554/a/b?x=1"


def test_given_credentials_replace_those_in_the_url():
    assert with_credentials("rtsp://old:pw@cam/x", "new", "") == "rtsp://new@cam/x"
    assert with_credentials("rtsp://cam/x", "", "") == "rtsp://cam/x"


def test_every_url_in_a_message_is_masked():
    text = "a http://u:one@h1/ b rtsp://v:two@h2:554/s c"
    masked = mask_text(text)
    assert "one" not in masked and "two" not in masked
    assert masked == "a http://u:****@h1/ b rtsp://v:****@h2:554/s c"


def test_secret_query_parameters_are_masked_in_any_text():
    text = "Error opening http://cam/a.cgi?user=u&pwd=hunter2&api_key=k3y;x then https://h/x?Token=abc#f"
    masked = mask_text(text)
    assert not any(secret in masked for secret in ("hunter2", "k3y", "abc"))
    assert "user=u&pwd=****&api_key=****" in masked and "?Token=****#f" in masked
