"""Who may call what, over the real service: every RPC the server hosts, listed from the
descriptors (so a new one cannot slip through), called with no credential, a revoked key, an
expired token, and a key of each role."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2
from support.auth import ADMIN_API_KEY, authed_channel, login, make_key, make_user

from spoton.v1 import auth_pb2, auth_pb2_grpc
from spoton_inference.domain.principal import Role
from spoton_inference.grpc_api.access import ACCESS, OPEN
from spoton_inference.grpc_api.reflection import SERVICE_NAMES as REFLECTION_SERVICES
from spoton_inference.grpc_api.server import HEALTH_SERVICE, SPOTON_SERVICES
from spoton_inference.services.auth import User, parse_api_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CALL_TIMEOUT_S = 10.0
REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
ROLES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}
# Login is open: the matrix signs in as this user (created by the `keys` fixture), so that
# a refusal could only come from the edge.
MATRIX_USER = ("matrix-user", "matrix password 1")


def _hosted_methods() -> dict[str, MethodDescriptor]:
    pool = descriptor_pool.Default()
    # grpc.health.v1 registers its descriptors on import; reflection's under its v1alpha name.
    assert health_pb2.DESCRIPTOR is not None
    methods: dict[str, MethodDescriptor] = {}
    for service in (*SPOTON_SERVICES, HEALTH_SERVICE, *REFLECTION_SERVICES):
        try:
            descriptor = pool.FindServiceByName(service)
        except KeyError:  # grpc.reflection.v1 is served under v1alpha's messages
            descriptor = pool.FindServiceByName("grpc.reflection.v1alpha.ServerReflection")
        for method in descriptor.methods:
            methods[f"/{service}/{method.name}"] = method
    return methods


METHODS = _hosted_methods()


def test_every_hosted_rpc_has_exactly_one_access_rule():
    assert "/spoton.v1.AuthService/CreateApiKey" in METHODS and len(METHODS) > 50
    assert sorted(set(METHODS) - set(ACCESS)) == [], "RPCs without a role in grpc_api/access.py"
    assert sorted(set(ACCESS) - set(METHODS)) == [], "rules in grpc_api/access.py for RPCs the server lacks"
    assert {path for path, need in ACCESS.items() if need == OPEN} == {
        "/spoton.v1.AuthService/Login",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        *(f"/{s}/ServerReflectionInfo" for s in REFLECTION_SERVICES),
    }


def _request(path: str, method: MethodDescriptor):
    request = message_factory.GetMessageClass(method.input_type)()
    if path.endswith("/ServerReflectionInfo"):
        request.list_services = ""
    if path == "/spoton.v1.AuthService/Login":
        request.username, request.password = MATRIX_USER
    return request


async def _status(channel: grpc.aio.Channel, path: str) -> grpc.StatusCode:
    """The status ``path`` answers a plain (mostly empty) request with; OK when it answers."""
    method = METHODS[path]
    request = _request(path, method)
    serialize = type(request).SerializeToString
    deserialize = message_factory.GetMessageClass(method.output_type).FromString
    try:
        if method.client_streaming:
            requests = iter([request])
            if method.server_streaming:
                call = channel.stream_stream(path, serialize, deserialize)(requests, timeout=CALL_TIMEOUT_S)
                await _first(call)
            else:
                await channel.stream_unary(path, serialize, deserialize)(requests, timeout=CALL_TIMEOUT_S)
        elif method.server_streaming:
            await _first(channel.unary_stream(path, serialize, deserialize)(request, timeout=CALL_TIMEOUT_S))
        else:
            await channel.unary_unary(path, serialize, deserialize)(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def _first(call) -> None:
    """Read one answer (or the end, or the error): enough to know the call got through."""
    try:
        async for _ in call:
            break
    finally:
        call.cancel()


@pytest_asyncio.fixture(scope="module")
async def keys(live_service) -> dict[str, str]:
    await make_user(live_service.target, *MATRIX_USER, "viewer")
    return {name: await make_key(live_service.target, name, name=f"matrix {name}") for name in ROLES}


@pytest_asyncio.fixture(scope="module")
async def revoked_key(live_service) -> str:
    key = await make_key(live_service.target, "admin", name="matrix revoked")
    async with authed_channel(live_service.target) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key[4:16]))
    return key


@pytest.fixture(scope="module")
def expired_token(live_service) -> str:
    """An admin's token, signed by the server's own key, that expired an hour ago."""
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=live_service.settings.access_token_ttl_s + 3600)
    token, expires = live_service.app.auth.tokens.issue(User("matrix-admin", Role.ADMIN, frozenset(), issued), issued)
    assert expires < dt.datetime.now(dt.UTC)
    return token


@pytest_asyncio.fixture(scope="module")
async def anonymous(live_service) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(live_service.target) as channel:
        yield channel


async def test_without_a_credential_only_the_open_rpcs_answer(anonymous, keys):
    for path, need in ACCESS.items():
        code = await _status(anonymous, path)
        if need == OPEN:
            assert code not in REFUSED, path
        else:
            assert code == grpc.StatusCode.UNAUTHENTICATED, (path, code)


@pytest.mark.parametrize("credential", ["revoked_key", "expired_token", "malformed"])
async def test_a_revoked_key_or_an_expired_token_is_unauthenticated_everywhere(
    live_service, keys, revoked_key, expired_token, credential
):
    secret = {"revoked_key": revoked_key, "expired_token": expired_token, "malformed": "spk_not-a-real-key"}[credential]
    async with authed_channel(live_service.target, secret) as channel:
        for path, need in ACCESS.items():
            code = await _status(channel, path)
            expected = {grpc.StatusCode.UNAUTHENTICATED} if need != OPEN else set(grpc.StatusCode) - REFUSED
            assert code in expected, (credential, path, code)


@pytest.mark.parametrize("role", list(ROLES))
async def test_each_role_may_call_what_its_rank_allows_and_nothing_above(live_service, keys, role):
    async with authed_channel(live_service.target, keys[role]) as channel:
        for path, need in ACCESS.items():
            code = await _status(channel, path)
            if need == OPEN or ROLES[role] >= need:
                assert code not in REFUSED, (role, path, code)
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, (role, path, code)


async def test_the_refusals_say_what_to_do(live_service, anonymous, keys):
    create = "/spoton.v1.AuthService/CreateApiKey"
    stub = auth_pb2_grpc.AuthServiceStub(anonymous)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="x", role=auth_pb2.ROLE_ADMIN))
    assert "authorization: Bearer" in err.value.details()
    async with authed_channel(live_service.target, keys["operator"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await auth_pb2_grpc.AuthServiceStub(channel).CreateApiKey(auth_pb2.CreateApiKeyRequest(name="x"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"{create} needs the admin role" in err.value.details() and "has operator" in err.value.details()


async def test_an_unauthenticated_caller_learns_nothing_of_the_contract(anonymous):
    """A request breaking the contract (a NUL in a string) from a caller without a credential
    answers UNAUTHENTICATED, not the guard's INVALID_ARGUMENT naming the field."""
    stub = auth_pb2_grpc.AuthServiceStub(anonymous)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id="a\x00b"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_keys_users_and_tokens_through_auth_service(live_service):
    target = live_service.target
    async with authed_channel(target) as channel:
        admin = auth_pb2_grpc.AuthServiceStub(channel)
        me = await admin.WhoAmI(auth_pb2.WhoAmIRequest())
        assert (me.role, me.kind, me.credential_id) == (auth_pb2.ROLE_ADMIN, "api_key", ADMIN_API_KEY[4:16])

        # A key: its secret once, a listing without it, working at once, refused once revoked.
        created = await admin.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="kiosk", role=auth_pb2.ROLE_VIEWER, environment_ids=["hall"])
        )
        key_id, secret = created.api_key.key_id, created.secret
        assert secret.startswith(f"spk_{key_id}_") and len(secret) > 50
        listed = {k.key_id: k for k in (await admin.ListApiKeys(auth_pb2.ListApiKeysRequest())).api_keys}
        assert listed[key_id].name == "kiosk" and list(listed[key_id].environment_ids) == ["hall"]
        assert parse_api_key(secret)[1] not in str(await admin.ListApiKeys(auth_pb2.ListApiKeysRequest()))
        async with authed_channel(target, secret) as kiosk_channel:
            kiosk = auth_pb2_grpc.AuthServiceStub(kiosk_channel)
            who = await kiosk.WhoAmI(auth_pb2.WhoAmIRequest())
            assert (who.subject, who.role, list(who.environment_ids)) == ("kiosk", auth_pb2.ROLE_VIEWER, ["hall"])
            await admin.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key_id))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await kiosk.WhoAmI(auth_pb2.WhoAmIRequest())
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in err.value.details()
        listed = {k.key_id: k for k in (await admin.ListApiKeys(auth_pb2.ListApiKeysRequest())).api_keys}
        assert listed[key_id].HasField("revoked_at")

        # The x-api-key metadata works as well as authorization.
        viewer = await make_key(target, "viewer")
        who = await admin.WhoAmI(auth_pb2.WhoAmIRequest(), metadata=(("x-api-key", viewer),))
        assert who.role == auth_pb2.ROLE_VIEWER

        # A user logs in for a token that works until it expires; a wrong password does not.
        await make_user(target, "ada", "correct horse battery", "operator", ["hall", "yard"])
        users = (await admin.ListUsers(auth_pb2.ListUsersRequest())).users
        assert [(u.username, u.role) for u in users if u.username == "ada"] == [("ada", auth_pb2.ROLE_OPERATOR)]
        assert "correct horse" not in str(users)
    answer = await login(target, "ada", "correct horse battery")
    assert answer.role == auth_pb2.ROLE_OPERATOR and list(answer.environment_ids) == ["hall", "yard"]
    ttl = answer.expires_at.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(0) < ttl <= dt.timedelta(seconds=live_service.settings.access_token_ttl_s)
    async with authed_channel(target, answer.access_token) as channel:
        who = await auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(auth_pb2.WhoAmIRequest())
    assert (who.subject, who.kind, who.role) == ("ada", "token", auth_pb2.ROLE_OPERATOR)
    for username, password in (("ada", "wrong password"), ("nobody", "correct horse battery")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await login(target, username, password)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.value.details() == "wrong username or password"  # the same for both
    async with authed_channel(target) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).DeleteUser(auth_pb2.DeleteUserRequest(username="ada"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await login(target, "ada", "correct horse battery")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_key_stops_working_when_it_expires(live_service):
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    key = await make_key(live_service.target, "viewer", expires_at=expires)
    async with authed_channel(live_service.target, key) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.WhoAmI(auth_pb2.WhoAmIRequest())
        await asyncio.sleep((expires - dt.datetime.now(dt.UTC)).total_seconds() + 0.5)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.WhoAmI(auth_pb2.WhoAmIRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.value.details()


async def test_a_key_cannot_be_created_already_expired_or_without_a_role(live_service):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await make_key(live_service.target, "viewer", expires_at=past)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "in the past" in err.value.details()
    async with authed_channel(live_service.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await auth_pb2_grpc.AuthServiceStub(channel).CreateApiKey(auth_pb2.CreateApiKeyRequest(name="no role"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "role is required" in err.value.details()


async def test_an_admin_limited_to_some_environments_cannot_hand_out_more(live_service):
    scoped = await make_key(live_service.target, "admin", ["hall"], name="hall admin")
    async with authed_channel(live_service.target, scoped) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for environments in ([], ["hall", "yard"]):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.CreateApiKey(
                    auth_pb2.CreateApiKeyRequest(name="wider", role=auth_pb2.ROLE_ADMIN, environment_ids=environments)
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "limited to" in err.value.details()
        narrower = await stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="hall viewer", role=auth_pb2.ROLE_VIEWER, environment_ids=["hall"])
        )
    assert list(narrower.api_key.environment_ids) == ["hall"]


async def test_credential_use_is_in_the_audit_log(live_service, revoked_key):
    """Logins, keys created and revoked, and refused credentials, named by id only."""
    await make_user(live_service.target, "audited", "audited password", "viewer")
    await login(live_service.target, "audited", "audited password")
    async with authed_channel(live_service.target, revoked_key) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(auth_pb2.WhoAmIRequest())
    events = []
    async with authed_channel(live_service.target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for action in ("user.create", "auth.login", "key.revoke", "auth.denied"):  # newest first, each
            request = auth_pb2.ListAuditEventsRequest(page_size=500, action=action)
            events += (await stub.ListAuditEvents(request)).events
    seen = {(e.action, e.target, e.outcome) for e in events}
    assert ("user.create", "user/audited", "ok") in seen and ("auth.login", "user/audited", "ok") in seen
    assert ("key.revoke", f"key/{revoked_key[4:16]}", "ok") in seen
    denied = [e for e in events if e.action == "auth.denied" and e.credential_id == revoked_key[4:16]]
    assert denied and denied[0].target == "rpc/spoton.v1.AuthService/WhoAmI"
    assert denied[0].outcome == "failed: Unauthenticated"
    secret = parse_api_key(revoked_key)[1]
    assert all(secret not in str(e) and "audited password" not in str(e) for e in events)
