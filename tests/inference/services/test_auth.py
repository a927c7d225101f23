"""Credentials without the service: API key form and hashing, passwords, signed tokens, and
tokens from an external OpenID Connect issuer served over real HTTP with its own JWKS."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from spoton_inference.domain.errors import InvalidArgument, Unauthenticated
from spoton_inference.domain.principal import Role
from spoton_inference.services.auth import (
    Authenticator,
    AuthStore,
    OidcVerifier,
    TokenCodec,
    User,
    credential_from_metadata,
    hash_password,
    hash_secret,
    new_api_key,
    parse_api_key,
    verify_secret,
)

NOW = dt.datetime.now(dt.UTC)
ADA = User("ada", Role.OPERATOR, frozenset({"hall"}), NOW)


def test_a_new_key_parses_back_and_only_its_own_secret_matches_the_stored_hash():
    a, b = new_api_key(), new_api_key()
    assert a.text.startswith("spk_") and a.key_id != b.key_id and a.secret != b.secret
    assert parse_api_key(a.text) == (a.key_id, a.secret)
    stored = hash_secret(a.secret)
    assert a.secret not in stored and len(stored) == 64
    assert verify_secret(a.secret, stored) and not verify_secret(b.secret, stored)
    for bad in ("", "spk_", a.text[:-20], a.text.replace("spk_", "sk_"), a.text + " ", "spk_" + "x" * 60):
        assert parse_api_key(bad) is None, bad


def test_passwords_are_argon2id_hashes_and_short_ones_are_refused():
    digest = hash_password("correct horse battery")
    assert digest.startswith("$argon2id$") and "correct" not in digest
    with pytest.raises(InvalidArgument, match="8 to 1024"):
        hash_password("short")


def test_a_token_carries_the_user_and_expires():
    codec = TokenCodec("s" * 32, ttl_s=900)
    before = dt.datetime.now(dt.UTC)
    token, expires = codec.issue(ADA)
    assert dt.timedelta(seconds=898) < expires - before <= dt.timedelta(seconds=900)
    principal = codec.verify(token)
    assert (principal.subject, principal.role, principal.environments, principal.kind) == (
        "ada",
        Role.OPERATOR,
        frozenset({"hall"}),
        "token",
    )
    old, _ = codec.issue(ADA, now=before - dt.timedelta(seconds=901))
    with pytest.raises(Unauthenticated, match="expired"):
        codec.verify(old)


def test_a_token_signed_with_another_secret_or_altered_is_refused():
    token, _ = TokenCodec("s" * 32, 900).issue(ADA)
    with pytest.raises(Unauthenticated, match="not valid"):
        TokenCodec("t" * 32, 900).verify(token)
    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["role"] = "admin"
    forged = ".".join([header, jwt.utils.base64url_encode(json.dumps(claims).encode()).decode(), signature])
    with pytest.raises(Unauthenticated):
        TokenCodec("s" * 32, 900).verify(forged)
    unsigned = jwt.encode({"sub": "x", "role": "admin", "iss": "spoton", "iat": 0, "exp": 2**40}, None, "none")
    with pytest.raises(Unauthenticated):
        TokenCodec("s" * 32, 900).verify(unsigned)


def test_credentials_are_read_from_either_metadata_key():
    assert credential_from_metadata((("authorization", "Bearer spk_abc"),)) == "spk_abc"
    assert credential_from_metadata((("authorization", "bearer  tok "),)) == "tok"
    assert credential_from_metadata((("x-api-key", "spk_abc"),)) == "spk_abc"
    assert credential_from_metadata((("user-agent", "x"),)) is None
    with pytest.raises(Unauthenticated, match="Bearer"):
        credential_from_metadata((("authorization", "Basic YTpi"),))


# -- an external OpenID Connect issuer -----------------------------------------------------------


class Issuer:
    """An identity provider on loopback: a discovery document and a JWKS with one RSA key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                documents = {
                    "/.well-known/openid-configuration": {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"},
                    "/jwks": jwks,
                }
                body = json.dumps(documents.get(self.path, {})).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        body = {"iss": self.url, "sub": "grace", "aud": "spoton", "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    yield running
    running.close()


async def test_an_external_issuers_token_is_verified_against_its_jwks(issuer):
    verifier = OidcVerifier(issuer.url, "spoton", "spoton_role")
    principal = await verifier.verify(issuer.token(spoton_role="viewer", envs=["hall"]))
    assert (principal.subject, principal.role, principal.environments) == ("grace", Role.VIEWER, frozenset({"hall"}))

    # Through the authenticator: a token from this issuer goes to the JWKS, not to the HS256 key.
    # Tokens never read the store of keys and users.
    auth = Authenticator(cast(AuthStore, None), TokenCodec("s" * 32, 900), verifier)
    assert (await auth.authenticate(issuer.token(spoton_role="admin"))).role == Role.ADMIN

    refused = {
        "another audience": issuer.token(spoton_role="viewer", aud="someone-else"),
        "expired": issuer.token(spoton_role="viewer", exp=int(NOW.timestamp()) - 60),
        "no role": issuer.token(),
        "an unknown role": issuer.token(spoton_role="root"),
        "signed by another key": issuer.token(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }
    for why, token in refused.items():
        with pytest.raises(Unauthenticated):
            await auth.authenticate(token)
            pytest.fail(f"a token with {why} was accepted")
