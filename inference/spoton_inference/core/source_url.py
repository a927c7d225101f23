"""Camera source URLs with credentials: built for the decoder, masked for everything else.

A camera's RTSP/HTTP credentials are stored apart from its URL. :func:`with_credentials`
puts them into the URL only at the moment a decoder opens it; anything shown to a user or
written to a log goes through :func:`mask_text` first (the password masked, the user name
kept: it helps support), so a password never leaves the process.

Example:
    >>> url = with_credentials("rtsp://cam.local:554/live", "admin", "s3cr:t")
    >>> url
    'rtsp://admin:s3cr%3At@cam.local:554/live'
    >>> mask_text(url)
    'rtsp://admin:****@cam.local:554/live'
    >>> mask_text("rtsp://cam.local/live")
    'rtsp://cam.local/live'
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "****"

# Credentials inside any URL in free text (an FFmpeg error message quotes the URL it opened).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s:/@]*):[^\s/@]*@")


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
    return _USERINFO_IN_TEXT.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
