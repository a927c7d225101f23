"""The OpenAPI document at /schema describes every route, with typed bodies."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

# Routes that are plumbing rather than API: the schema's own pages and the dashboard's files.
UNDOCUMENTED = ("/schema", "/static")


def _documented_routes(app: Litestar) -> set[tuple[str, str]]:
    routes = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(UNDOCUMENTED):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        routes |= {(path, method.lower()) for method in route.methods if method not in ("OPTIONS", "HEAD")}
    return routes


async def test_every_route_is_in_the_schema(app: Litestar, client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    expected = _documented_routes(app)
    assert expected == documented
    assert {
        ("/health", "get"),
        ("/", "get"),
        ("/api/v1/processing-tasks/start", "post"),
        ("/api/v1/processing-tasks/{task_id}/status", "get"),
        ("/api/v1/processing-tasks", "get"),
        ("/api/v1/processing-tasks/{task_id}/events", "get"),
        ("/api/v1/processing-tasks/{task_id}/exports", "get"),
        ("/api/v1/processing-tasks/{task_id}/control", "post"),
        ("/api/v1/environments", "get"),
        ("/api/v1/environments", "post"),
        ("/api/v1/environments/:register", "post"),
        ("/api/v1/environments/{environment_id}", "get"),
        ("/api/v1/environments/{environment_id}", "patch"),
        ("/api/v1/environments/{environment_id}", "delete"),
        ("/api/v1/environments/{environment_id}/cameras", "get"),
        ("/api/v1/environments/{environment_id}/cameras", "post"),
        ("/api/v1/environments/{environment_id}/cameras/{camera_id}", "get"),
        ("/api/v1/environments/{environment_id}/cameras/{camera_id}", "patch"),
        ("/api/v1/environments/{environment_id}/cameras/{camera_id}", "delete"),
        ("/api/v1/media/{path}", "get"),
        ("/api/v1/analytics/trajectory/{global_person_id}", "get"),
        ("/api/v1/analytics/heatmap", "get"),
        ("/api/v1/analytics/counts", "get"),
        ("/api/v1/analytics/dwell", "get"),
        ("/api/v1/environments/{environment_id}/zones", "get"),
        ("/api/v1/environments/{environment_id}/zones", "post"),
        ("/api/v1/environments/{environment_id}/zones/{zone_id}", "get"),
        ("/api/v1/environments/{environment_id}/zones/{zone_id}", "patch"),
        ("/api/v1/environments/{environment_id}/zones/{zone_id}", "delete"),
        ("/api/v1/environments/{environment_id}/camera-groups", "get"),
        ("/api/v1/environments/{environment_id}/camera-groups", "post"),
        ("/api/v1/environments/{environment_id}/camera-groups/{group_id}", "get"),
        ("/api/v1/environments/{environment_id}/camera-groups/{group_id}", "patch"),
        ("/api/v1/environments/{environment_id}/camera-groups/{group_id}", "delete"),
        ("/api/v1/environments/{environment_id}/cameras/import", "post"),
        ("/api/v1/environments/{environment_id}/cameras/export", "get"),
        ("/api/v1/cameras/summary", "get"),
    } <= expected


async def test_json_routes_have_typed_bodies(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    environment, camera = "/api/v1/environments/{environment_id}", "/api/v1/environments/{environment_id}/cameras"
    typed = {
        ("/health", "get", "200"): "HealthReport",
        ("/api/v1/processing-tasks/start", "post", "202"): "TaskStarted",
        ("/api/v1/processing-tasks/{task_id}/status", "get", "200"): "Task",
        ("/api/v1/processing-tasks/{task_id}/control", "post", "200"): "Task",
        ("/api/v1/processing-tasks", "get", "200"): "TaskPage",
        ("/api/v1/processing-tasks/{task_id}/exports", "get", "200"): "ExportList",
        ("/api/v1/environments", "get", "200"): "EnvironmentList",
        ("/api/v1/environments", "post", "201"): "Environment",
        ("/api/v1/environments/:register", "post", "200"): "Environment",
        (environment, "get", "200"): "Environment",
        (environment, "patch", "200"): "Environment",
        (camera, "get", "200"): "CameraList",
        (camera, "post", "201"): "Camera",
        (camera + "/{camera_id}", "get", "200"): "Camera",
        (camera + "/{camera_id}", "patch", "200"): "Camera",
        ("/api/v1/analytics/trajectory/{global_person_id}", "get", "200"): "Trajectory",
        ("/api/v1/analytics/heatmap", "get", "200"): "Heatmap",
        ("/api/v1/analytics/counts", "get", "200"): "Counts",
        ("/api/v1/analytics/dwell", "get", "200"): "Dwell",
        (environment + "/zones", "get", "200"): "ZoneList",
        (environment + "/zones", "post", "201"): "Zone",
        (environment + "/zones/{zone_id}", "get", "200"): "Zone",
        (environment + "/zones/{zone_id}", "patch", "200"): "Zone",
        (environment + "/camera-groups", "get", "200"): "CameraGroupList",
        (environment + "/camera-groups", "post", "201"): "CameraGroup",
        (environment + "/camera-groups/{group_id}", "get", "200"): "CameraGroup",
        (environment + "/camera-groups/{group_id}", "patch", "200"): "CameraGroup",
        (camera + "/import", "post", "200"): "ImportReport",
        ("/api/v1/cameras/summary", "get", "200"): "CameraSummary",
    }
    for (path, method, status), name in typed.items():
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"] == f"#/components/schemas/{name}", (path, method)
    bodies = {
        ("/api/v1/processing-tasks/start", "post"): "StartTaskBody",
        ("/api/v1/processing-tasks/{task_id}/control", "post"): "ControlTaskBody",
        ("/api/v1/environments", "post"): "EnvironmentBody",
        ("/api/v1/environments/:register", "post"): "RegisterEnvironmentBody",
        (environment, "patch"): "EnvironmentPatchBody",
        (camera, "post"): "CameraBody",
        (camera + "/{camera_id}", "patch"): "CameraPatchBody",
        (environment + "/zones", "post"): "ZoneBody",
        (environment + "/zones/{zone_id}", "patch"): "ZonePatchBody",
        (environment + "/camera-groups", "post"): "CameraGroupBody",
        (environment + "/camera-groups/{group_id}", "patch"): "CameraGroupPatchBody",
    }
    for (path, method), name in bodies.items():
        content = paths[path][method]["requestBody"]["content"]["application/json"]
        assert content["schema"]["$ref"] == f"#/components/schemas/{name}", (path, method)
    for path in (environment, camera + "/{camera_id}"):
        assert "204" in paths[path]["delete"]["responses"]
    heatmap = paths["/api/v1/analytics/heatmap"]["get"]["responses"]["200"]["content"]
    assert heatmap["image/png"]["schema"] == {"type": "string", "format": "binary"}
    assert set(paths[camera + "/import"]["post"]["requestBody"]["content"]) == {
        "text/csv",
        "application/json",
        "multipart/form-data",
    }
    assert "422" in paths[camera + "/import"]["post"]["responses"]
    assert "text/csv" in paths[camera + "/export"]["get"]["responses"]["200"]["content"]
    events = paths["/api/v1/processing-tasks/{task_id}/events"]["get"]["responses"]
    assert "text/event-stream" in events["200"]["content"]
    assert schema["components"]["schemas"]["TaskStateName"]["enum"]
    assert "Problem" in schema["components"]["schemas"]


async def test_errors_are_documented_as_problems(client: AsyncTestClient[Litestar]) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path, operations in paths.items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/health", "503"):  # health answers with its report
                    continue
                assert list(response["content"]) == ["application/problem+json"], (path, status)


# -- the docs pages (Swagger UI, Redoc) work offline: everything from this origin ---------------

DOCS_PAGES = ("/schema", "/schema/redoc", "/schema/swagger")
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}
_URL_ATTRIBUTE = re.compile(r"""\s(?:src|href)=['"]([^'"]*)['"]""")
_NONCE_ATTRIBUTE = re.compile(r"""\snonce=['"]([^'"]+)['"]""")


async def test_docs_pages_load_everything_from_this_origin_without_a_login(app: Litestar) -> None:
    async with AsyncTestClient(app) as anonymous:
        for page in DOCS_PAGES:
            response = await anonymous.get(page)
            assert response.status_code == 200, page
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            html = response.text
            # No CDN, no web fonts: nothing names another host at all.
            assert "http://" not in html and "https://" not in html and "//" not in html, page
            assert "googleapis" not in html and "fonts" not in html, page
            # No inline code: every script is a file, and no <style> (the policy would refuse them).
            assert "<style" not in html and " style=" not in html, page
            assert len(re.findall(r"<script\b", html)) == len(re.findall(r"<script\b[^>]*\ssrc=", html)) >= 2, page
            urls = _URL_ATTRIBUTE.findall(html)
            assert urls and all(url.startswith("/schema/assets/") for url in urls), urls
            for url in urls:
                asset = await anonymous.get(url)
                assert asset.status_code == 200, url
                assert asset.headers["content-type"] == ASSET_TYPES[url[url.rindex(".") :]], url
                assert asset.headers["cache-control"] == "public, max-age=31536000, immutable", url
                assert asset.content, url


async def test_docs_assets_are_the_installed_bundles(app: Litestar) -> None:
    from openapi_ui_bundles import redoc, swagger_ui

    async with AsyncTestClient(app) as anonymous:
        swagger = (await anonymous.get("/schema/swagger")).text
        redoc_page = (await anonymous.get("/schema/redoc")).text
        bundle = next(url for url in _URL_ATTRIBUTE.findall(swagger) if url.endswith("/swagger-ui-bundle.js"))
        assert (await anonymous.get(bundle)).content == (swagger_ui.static_path / "swagger-ui-bundle.js").read_bytes()
        standalone = next(url for url in _URL_ATTRIBUTE.findall(redoc_page) if url.endswith("/redoc.standalone.js"))
        assert (await anonymous.get(standalone)).content == (redoc.static_path / "redoc.standalone.js").read_bytes()
        # Only the listed files, and only at the current version.
        version_dir = bundle.rsplit("/", 1)[0]
        for missing in (
            f"{version_dir}/index.html",
            f"{version_dir}/..%2F..%2Fopenapi.json",
            bundle.replace(version_dir, "/schema/assets/0000000000000000"),
        ):
            assert (await anonymous.get(missing)).status_code == 404, missing


async def test_docs_pages_have_a_strict_policy_with_a_fresh_nonce(app: Litestar) -> None:
    async with AsyncTestClient(app) as anonymous:
        nonces = set()
        for _ in range(2):
            response = await anonymous.get("/schema/redoc")
            policy = dict(
                directive.strip().split(" ", 1) for directive in response.headers["content-security-policy"].split(";")
            )
            assert policy["script-src"] == "'self'"
            assert policy["default-src"] == policy["connect-src"] == "'self'"
            assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
            assert "unsafe" not in response.headers["content-security-policy"]
            (nonce,) = _NONCE_ATTRIBUTE.findall(response.text)
            assert f"'nonce-{nonce}'" in policy["style-src"].split()
            nonces.add(nonce)
        assert len(nonces) == 2
        # The document and the assets get the same policy (no route under /schema goes without).
        document = await anonymous.get("/schema/openapi.json")
        assert "script-src 'self';" in document.headers["content-security-policy"]


async def test_docs_pages_hold_no_credential(client: AsyncTestClient[Litestar]) -> None:
    """The pages are the same for everyone: nothing of the caller's credential is written into them."""
    token = client.headers["Authorization"].removeprefix("Bearer ")
    client.cookies.set("spoton_session", "session-secret")
    for page in (*DOCS_PAGES, "/schema/openapi.json", "/schema/openapi.yaml"):
        response = await client.get(page)
        assert response.status_code == 200, page
        assert token not in response.text and "session-secret" not in response.text, page
