"""Credentials: API keys for machines, passwords and signed tokens (JWT) for people, and
optionally tokens from an external OpenID Connect issuer. :class:`Authenticator` turns the
credential a caller presents into a :class:`Principal`; the gRPC edge decides what it may do.

An API key is ``spk_<key_id>_<secret>``: the id finds the stored record, and only the SHA-256
of the secret is stored (the secret has 256 bits of entropy, so a slow hash adds nothing and
would cost every call; passwords, chosen by people, get argon2id).

    >>> key = new_api_key()
    >>> parsed = parse_api_key(key.text)
    >>> parsed == (key.key_id, key.secret), verify_secret(key.secret, hash_secret(key.secret))
    (True, True)
    >>> parse_api_key("spk_short") is None, verify_secret("guess", hash_secret(key.secret))
    (True, False)
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import argon2
import jwt

from spoton_inference.domain.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated, Unavailable
from spoton_inference.domain.principal import Principal, Role

log = logging.getLogger(__name__)

API_KEY_PREFIX = "spk_"
KEY_ID_LENGTH = 12  # secrets.token_urlsafe(9)
SECRET_BYTES = 32  # secrets.token_urlsafe(32): 43 characters
_KEY_FORM = re.compile(rf"^{API_KEY_PREFIX}([A-Za-z0-9_-]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{43,128}})$")
TOKEN_ISSUER = "spoton"
JWT_ALGORITHM = "HS256"
# Key records are read from PostgreSQL again after this long, so a revocation made by another
# replica takes effect within it (this replica's own revocations at once). While PostgreSQL is
# unreachable, a key verified before the outage keeps working, as tracking does.
KEY_CACHE_TTL_S = 5.0
KEY_CACHE_MAX = 10_000
# last_used_at is written at most this often per key, not on every call.
TOUCH_INTERVAL_S = 60.0
MAX_NAME_LENGTH = 200
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; this bounds the work per login
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
OIDC_DISCOVERY_TIMEOUT_S = 5.0
OIDC_DISCOVERY_PATH = "/.well-known/openid-configuration"
ROLE_NAMES = {role.name.lower(): role for role in Role}


def role_named(name: str) -> Role:
    try:
        return ROLE_NAMES[name.strip().lower()]
    except KeyError:
        raise InvalidArgument(f"unknown role {name!r}: one of {', '.join(ROLE_NAMES)}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{API_KEY_PREFIX}{self.key_id}_{self.secret}"


def new_api_key() -> NewApiKey:
    while True:
        key_id = secrets.token_urlsafe(9)
        if key_id[0] not in "-_":  # readable in listings and command lines
            return NewApiKey(key_id, secrets.token_urlsafe(SECRET_BYTES))


def parse_api_key(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    m = _KEY_FORM.match(text)
    return (m.group(1), m.group(2)) if m else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), digest)


_passwords = argon2.PasswordHasher()


def hash_password(password: str) -> str:
    check_password(password)
    return _passwords.hash(password)


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidArgument(f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")


def _password_matches(digest: str, password: str) -> bool:
    try:
        return _passwords.verify(digest, password)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


# A hash to verify against when the user does not exist, so a login takes as long for an
# unknown name as for a wrong password (no user enumeration by timing).
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored key, without its secret."""

    key_id: str
    name: str
    role: Role
    environments: frozenset[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    bootstrap: bool = False

    def refusal(self, now: dt.datetime) -> str | None:
        """Why the key cannot be used at ``now``, or None."""
        if self.revoked_at is not None:
            return f"API key {self.key_id} was revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return f"API key {self.key_id} expired at {self.expires_at.isoformat()}"
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role
    environments: frozenset[str]
    created_at: dt.datetime


# The user a first start creates for the dashboard's login, and its generated password's entropy.
BOOTSTRAP_USERNAME = "admin"
BOOTSTRAP_PASSWORD_BYTES = 18


class AuthStore(Protocol):
    """What authentication needs from storage (storage/auth_store.py)."""

    async def get_key(self, key_id: str) -> tuple[ApiKeyRecord, str] | None: ...
    async def insert_key(self, record: ApiKeyRecord, secret_hash: str) -> None: ...
    async def upsert_bootstrap_key(self, record: ApiKeyRecord, secret_hash: str) -> None: ...
    async def has_admin_key(self) -> bool: ...
    async def list_keys(self) -> list[ApiKeyRecord]: ...
    async def revoke_key(self, key_id: str, at: dt.datetime) -> bool: ...
    async def touch_key(self, key_id: str, at: dt.datetime) -> None: ...
    async def get_user(self, username: str) -> tuple[User, str] | None: ...
    async def insert_user(self, user: User, password_hash: str) -> bool: ...
    async def list_users(self) -> list[User]: ...
    async def delete_user(self, username: str) -> bool: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TokenCodec:
    """HS256 access tokens this service issues at login, and verifies on each call."""

    def __init__(self, secret: str, ttl_s: float) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, user: User, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
        now = (now or _now()).replace(microsecond=0)  # the claims are whole seconds
        expires = now + dt.timedelta(seconds=self.ttl_s)
        claims = {
            "sub": user.username,
            "role": user.role.name.lower(),
            "envs": sorted(user.environments),
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "iss": TOKEN_ISSUER,
            "jti": secrets.token_urlsafe(9),
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM), expires

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired: log in again") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the access token is not valid ({exc})") from None
        return _principal_from_claims(claims, "role", claims.get("jti", ""))


def _principal_from_claims(claims: dict[str, Any], role_claim: str, credential_id: str) -> Principal:
    role = ROLE_NAMES.get(str(claims.get(role_claim, "")).lower())
    if role is None:
        raise Unauthenticated(f"the token's {role_claim!r} claim names no SpotOn role (one of {', '.join(ROLE_NAMES)})")
    envs = claims.get("envs") or []
    if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
        raise Unauthenticated("the token's 'envs' claim is not a list of environment ids")
    return Principal(str(claims["sub"]), role, frozenset(envs), credential_id, "token")


class OidcVerifier:
    """Tokens from an external OpenID Connect issuer, checked against the issuer's JWKS
    (found through its discovery document); the role comes from ``role_claim``."""

    def __init__(self, issuer: str, audience: str, role_claim: str) -> None:
        self.issuer = issuer  # exactly as the tokens' iss claim has it
        self.audience = audience
        self.role_claim = role_claim
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> jwt.PyJWKClient:
        async with self._lock:
            if self._jwks is None:
                url = self.issuer.rstrip("/") + OIDC_DISCOVERY_PATH
                try:
                    document = await asyncio.to_thread(_fetch_json, url)
                    self._jwks = jwt.PyJWKClient(document["jwks_uri"], timeout=int(OIDC_DISCOVERY_TIMEOUT_S))
                except (OSError, ValueError, KeyError) as exc:
                    raise Unavailable(f"the OIDC issuer's discovery document {url} cannot be read ({exc})") from None
            return self._jwks

    async def verify(self, token: str) -> Principal:
        client = await self._client()
        try:
            key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
                issuer=self.issuer,
                audience=self.audience or None,
                options={"require": ["exp", "sub", "iss"], "verify_aud": bool(self.audience)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the identity provider's token has expired: sign in again") from None
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable(f"the OIDC issuer's keys cannot be fetched ({exc})") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the identity provider's token is not valid ({exc})") from None
        return _principal_from_claims(claims, self.role_claim, claims.get("jti", ""))


def _fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=OIDC_DISCOVERY_TIMEOUT_S) as response:
        document = json.load(response)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def _token_issuer(token: str) -> str | None:
    try:
        return str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
    except jwt.PyJWTError:
        return None


@dataclasses.dataclass(slots=True)
class _CachedKey:
    record: ApiKeyRecord
    secret_hash: str
    fetched_at: float
    touched_at: float = 0.0


class Authenticator:
    """Credentials to principals, and the management of keys and users."""

    def __init__(self, store: AuthStore, tokens: TokenCodec, oidc: OidcVerifier | None = None) -> None:
        self.store = store
        self.tokens = tokens
        self.oidc = oidc
        self._keys: collections.OrderedDict[str, _CachedKey] = collections.OrderedDict()

    # -- authentication -------------------------------------------------------------------

    async def authenticate(self, credential: str) -> Principal:
        """The principal ``credential`` (an API key or a token) stands for; Unauthenticated if none."""
        if credential.startswith(API_KEY_PREFIX):
            return await self._authenticate_key(credential)
        if credential.count(".") == 2:
            issuer = _token_issuer(credential)
            if self.oidc is not None and issuer == self.oidc.issuer:
                return await self.oidc.verify(credential)
            return self.tokens.verify(credential)
        raise Unauthenticated("the credential is neither an API key (spk_...) nor an access token")

    async def _authenticate_key(self, text: str) -> Principal:
        parsed = parse_api_key(text)
        if parsed is None:
            raise Unauthenticated("the API key is malformed: expected spk_<key id>_<secret>")
        key_id, secret = parsed
        cached = await self._lookup(key_id)
        if cached is None or not verify_secret(secret, cached.secret_hash):
            raise Unauthenticated("the API key is not valid")
        now = _now()
        refusal = cached.record.refusal(now)
        if refusal is not None:
            raise Unauthenticated(refusal)
        clock = time.monotonic()
        if clock - cached.touched_at >= TOUCH_INTERVAL_S:
            cached.touched_at = clock
            try:
                await self.store.touch_key(key_id, now)
            except Unavailable:
                pass  # bookkeeping only: the call goes on
        record = cached.record
        return Principal(record.name, record.role, record.environments, record.key_id, "api_key")

    async def _lookup(self, key_id: str) -> _CachedKey | None:
        cached = self._keys.get(key_id)
        clock = time.monotonic()
        if cached is not None and clock - cached.fetched_at < KEY_CACHE_TTL_S:
            return cached
        try:
            found = await self.store.get_key(key_id)
        except Unavailable:
            if cached is not None:
                return cached
            raise
        if found is None:
            self._keys.pop(key_id, None)
            return None
        fresh = _CachedKey(found[0], found[1], clock, cached.touched_at if cached else 0.0)
        self._keys[key_id] = fresh
        self._keys.move_to_end(key_id)
        while len(self._keys) > KEY_CACHE_MAX:
            self._keys.popitem(last=False)
        return fresh

    async def login(self, username: str, password: str) -> tuple[str, dt.datetime, User]:
        if not username or not password:
            raise InvalidArgument("a login needs a username and a password")
        found = await self.store.get_user(username) if _USERNAME.match(username) else None
        digest = found[1] if found else _DUMMY_HASH
        matches = await asyncio.to_thread(_password_matches, digest, password[:MAX_PASSWORD_LENGTH])
        if found is None or not matches:
            raise Unauthenticated("wrong username or password")
        token, expires = self.tokens.issue(found[0])
        return token, expires, found[0]

    # -- keys -----------------------------------------------------------------------------

    async def create_key(
        self, name: str, role: Role, environments: Iterable[str], expires_at: dt.datetime | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """A new key and its full text, which is shown this once."""
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise InvalidArgument(f"an API key needs a name of 1 to {MAX_NAME_LENGTH} characters")
        if expires_at is not None and expires_at <= _now():
            raise InvalidArgument(f"expires_at {expires_at.isoformat()} is in the past")
        key = new_api_key()
        record = ApiKeyRecord(key.key_id, name, role, frozenset(environments), _now(), expires_at)
        await self.store.insert_key(record, hash_secret(key.secret))
        return record, key.text

    async def list_keys(self) -> list[ApiKeyRecord]:
        return await self.store.list_keys()

    async def revoke_key(self, key_id: str) -> None:
        if not await self.store.revoke_key(key_id, _now()):
            raise NotFound(f"no API key {key_id!r} that is not revoked already")
        self._keys.pop(key_id, None)

    # -- users ----------------------------------------------------------------------------

    async def create_user(self, username: str, password: str, role: Role, environments: Iterable[str]) -> User:
        if not _USERNAME.match(username):
            raise InvalidArgument("a username has 1 to 64 letters, digits or . _ @ -")
        digest = await asyncio.to_thread(hash_password, password)
        user = User(username, role, frozenset(environments), _now())
        if not await self.store.insert_user(user, digest):
            raise AlreadyExists(f"a user {username!r} exists already")
        return user

    async def list_users(self) -> list[User]:
        return await self.store.list_users()

    async def delete_user(self, username: str) -> None:
        if not await self.store.delete_user(username):
            raise NotFound(f"no user {username!r}")

    # -- bootstrap ------------------------------------------------------------------------

    async def bootstrap_user(self) -> str | None:
        """On a first start with no users, the dashboard's way in: a user ``admin`` with a
        generated password, returned to be shown once (None when users exist already)."""
        if await self.store.list_users():
            return None
        password = secrets.token_urlsafe(BOOTSTRAP_PASSWORD_BYTES)
        try:
            await self.create_user(BOOTSTRAP_USERNAME, password, Role.ADMIN, ())
        except AlreadyExists:  # another replica bootstrapped it first
            return None
        return password

    async def bootstrap(self, configured_key: str) -> str | None:
        """Make sure an admin can get in: ``configured_key`` (SPOTON_ADMIN_API_KEY) becomes the
        bootstrap admin key; without one, a key is created when no admin key exists yet. The
        full text of a created key is returned (to be shown once), else None."""
        if configured_key:
            parsed = parse_api_key(configured_key)
            if parsed is None:
                raise InvalidArgument(
                    "SPOTON_ADMIN_API_KEY must have the form spk_<12 characters>_<at least 43 characters>, "
                    "url-safe base64; create one with `python -m spoton_inference new-api-key`"
                )
            record = ApiKeyRecord(parsed[0], "admin (SPOTON_ADMIN_API_KEY)", Role.ADMIN, frozenset(), _now())
            await self.store.upsert_bootstrap_key(dataclasses.replace(record, bootstrap=True), hash_secret(parsed[1]))
            return None
        if await self.store.has_admin_key():
            return None
        key = new_api_key()
        record = ApiKeyRecord(key.key_id, "admin (bootstrap)", Role.ADMIN, frozenset(), _now(), bootstrap=True)
        await self.store.upsert_bootstrap_key(record, hash_secret(key.secret))
        return key.text


def credential_from_metadata(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The credential in gRPC metadata: ``authorization: Bearer <credential>`` or ``x-api-key``."""
    for name, value in metadata or ():
        if isinstance(value, bytes):
            continue
        if name == "authorization":
            scheme, _, credential = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
            raise Unauthenticated("the authorization metadata must be 'Bearer <API key or access token>'")
        if name == "x-api-key" and value.strip():
            return value.strip()
    return None
