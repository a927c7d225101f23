"""Camera source URLs with credentials: built for the decoder, masked for everything else.

A camera's RTSP/HTTP credentials are stored apart from its URL. :func:`with_credentials`
puts them into the URL only at the moment a decoder opens it; anything shown to a user or
written to a log goes through :func:`mask_text` first (the password masked, the user name
kept: it helps support), so a password never leaves the process. Credentials some cameras
take in the query string (``?pwd=...``, ``&token=...``: any parameter whose name looks like a
secret) are treated the same way: split out of the stored URL by :func:`split_query_secrets`,
put back by :func:`fill_query_secrets`, and masked by :func:`mask_text`.

Example:
    >>> url = with_credentials("rtsp://cam.local:554/live", "admin", "s3cr:t")
    >>> url
    'rtsp://admin:s3cr%3At@cam.local:554/live'
    >>> mask_text(url)
    'rtsp://admin:****@cam.local:554/live'
    >>> mask_text("rtsp://cam.local/live")
    'rtsp://cam.local/live'
    >>> mask_text("http://cam/snap.cgi?user=admin&pwd=s3cr")
    'http://cam/snap.cgi?user=admin&pwd=****'
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "****"

# Credentials inside any URL in free text (an FFmpeg error message quotes the URL it opened).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s:/@]*):[^\s/@]*@")
# Query parameters whose name says they carry a secret (pwd, password, passwd, token, api_key...).
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential", re.IGNORECASE)
_SECRET_PARAM_IN_TEXT = re.compile(
    r"(?P<name>[?&;][^\s=&;#?]*(?:pass|pwd|secret|token|key|auth|sig|credential)[^\s=&;#?]*=)[^\s&;#]*",
    re.IGNORECASE,
)


def with_credentials(url: str, username: str, password: str) -> str:
    """``url`` with ``username``/``password`` as its userinfo (percent-encoded); replaces any given."""
    if not username and not password:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = urllib.parse.quote(username, safe="")
    if password:
        userinfo += ":" + urllib.parse.quote(password, safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def mask_text(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password masked, for logs and errors.

    >>> mask_text("Error opening rtsp://u:p@10.0.0.5/x: 401")
    'Error opening rtsp://u:****@10.0.0.5/x: 401'
    """
    text = _USERINFO_IN_TEXT.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _SECRET_PARAM_IN_TEXT.sub(lambda m: f"{m['name']}{MASK}", text)


def split_query_secrets(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``url`` with each secret-named query value replaced by MASK, and those (name, raw value)
    pairs in order (still percent-encoded, so :func:`fill_query_secrets` restores the URL exactly).

    >>> split_query_secrets("http://cam/a?user=u&pwd=p%26q")
    ('http://cam/a?user=u&pwd=****', (('pwd', 'p%26q'),))
    """
    base, question, rest = url.partition("?")
    if not question:
        return url, ()
    query, hash_, fragment = rest.partition("#")
    found: list[tuple[str, str]] = []
    segments = []
    for segment in query.split("&"):
        name, eq, value = segment.partition("=")
        if eq and SECRET_PARAM.search(urllib.parse.unquote(name)):
            found.append((name, value))
            segment = f"{name}={MASK}"
        segments.append(segment)
    return f"{base}?{'&'.join(segments)}{hash_}{fragment}", tuple(found)


def fill_query_secrets(url: str, secrets: tuple[tuple[str, str], ...]) -> str:
    """The inverse of :func:`split_query_secrets`: each masked value of a name gets its secret back."""
    if not secrets:
        return url
    base, _, rest = url.partition("?")
    query, hash_, fragment = rest.partition("#")
    pending = list(secrets)
    segments = []
    for segment in query.split("&"):
        name, eq, value = segment.partition("=")
        if eq and value == MASK:
            match = next((i for i, (n, _) in enumerate(pending) if n == name), None)
            if match is not None:
                segment = f"{name}={pending.pop(match)[1]}"
        segments.append(segment)
    return f"{base}?{'&'.join(segments)}{hash_}{fragment}"
