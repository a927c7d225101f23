"""``/api/v1/media/{path}``: files the inference service published under the media root.

This is the facade's one route that is not a gRPC call: sub-videos and exports are read
straight from ``SPOTON_MEDIA_ROOT`` with Range, ETag and If-Range support, so browsers can
seek in videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter
from litestar.response import Stream

from spoton_facade import media
from spoton_facade.clients.auth import AuthClient
from spoton_facade.clients.inference import InferenceClient, request_metadata
from spoton_facade.problems import problem_responses
from spoton_facade.settings import FacadeSettings


class MediaController(Controller):
    """Byte-range file serving confined to the media root."""

    path = "/media"
    tags = ("media",)

    @get(
        "/{path:path}",
        summary="Download a media file",
        description=(
            "Serves e.g. `tasks/{task}/environments/{env}/cameras/{cam}/sub_videos/{file}` and "
            "`tasks/{task}/exports/{name}`. Sub-videos are H.264 MP4 with the index first (`video/mp4`), "
            "whatever format they were uploaded or registered in. One byte range per request (206); several ranges or "
            "one past the end give 416 with `Content-Range: bytes */<size>`. `If-None-Match` "
            "gives 304; a stale `If-Range` gives the whole file. A path outside the media root "
            "is 404. The caller must be allowed to see the task or environment the file is under "
            "(the session cookie serves `<video>` and `<img>`)."
        ),
        media_type="application/octet-stream",
        responses={
            206: ResponseSpec(
                bytes,
                description="The requested byte range",
                media_type="application/octet-stream",
                generate_examples=False,
            ),
            304: ResponseSpec(None, description="The client's copy (If-None-Match) is current"),
            **problem_responses(400, 401, 403, 404, 416, 502, 503, 504),
        },
    )
    async def get_media(
        self,
        path: FromPath[str],
        settings: NamedDependency[FacadeSettings],
        inference: NamedDependency[InferenceClient],
        request: Request[Any, Any, Any],
        range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        if_range: Annotated[str | None, HeaderParameter(name="If-Range")] = None,
    ) -> Stream:
        """Stream the file (or the asked-for range of it) in chunks."""
        await _authorize(path, inference, request)
        return await serve_file(settings.media_root, path, range_header, if_none_match, if_range)


async def _authorize(path: str, inference: InferenceClient, request: Request[Any, Any, Any]) -> None:
    """Ask the service whether the caller may see what ``path`` belongs to (a file is read here,
    not through the service, so the service's answer for its owner stands in): the task or the
    environment it is under, else just whether the credential is good. UNAUTHENTICATED,
    PERMISSION_DENIED and NOT_FOUND propagate as 401, 403 and 404."""
    if not request_metadata(request):
        raise NotAuthorizedException("send a credential: Authorization: Bearer, X-API-Key or the session cookie")
    owner, _, rest = path.strip("/").partition("/")
    owner_id = rest.partition("/")[0]
    if owner == "tasks" and owner_id:
        await inference.get_task(owner_id)
    elif owner == "environments" and owner_id:
        await inference.get_environment(owner_id)
    else:
        await AuthClient(request.app.state.inference_channel, request_metadata(request)).who_am_i()


async def serve_file(
    root: Path, path: str, range_header: str | None, if_none_match: str | None, if_range: str | None
) -> Stream:
    """The file ``path`` under ``root`` as :meth:`MediaController.get_media` serves it (404 if
    it is not there or outside ``root``); other routes that serve media files use it too."""
    resolved = media.resolve(root, path)
    if resolved is None:
        raise NotFoundException(f"No media file at {path!r}")
    try:
        opened = await media.MediaFile.open(resolved)
    except OSError as exc:  # removed, or unreadable, since it was resolved
        raise NotFoundException(f"No media file at {path!r}") from exc
    try:
        return _respond(opened, range_header, if_none_match, if_range)
    except BaseException:
        opened.close()
        raise


def _respond(
    opened: media.MediaFile, range_header: str | None, if_none_match: str | None, if_range: str | None
) -> Stream:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": opened.etag,
        "Last-Modified": opened.last_modified,
        # Revalidate each time: files are published once but an export may be rewritten.
        "Cache-Control": "no-cache",
    }
    # RFC 9110 §13.2.2: If-None-Match is evaluated before Range.
    if if_none_match is not None and media.etag_matches(if_none_match, opened.etag):
        opened.close()
        return Stream((), status_code=304, headers=headers)
    byte_range = None
    if range_header is not None and (
        if_range is None or media.if_range_holds(if_range, opened.etag, opened.last_modified)
    ):
        try:
            byte_range = media.parse_range(range_header, opened.size)
        except media.RangeNotSatisfiable as exc:
            raise HTTPException(
                status_code=416,
                detail=str(exc),
                headers={"Content-Range": f"bytes */{opened.size}", "Accept-Ranges": "bytes"},
            ) from exc
    if byte_range is None:
        start, length, status = 0, opened.size, 200
    else:
        start, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = byte_range.content_range(opened.size)
    headers["Content-Length"] = str(length)
    # Content-Type goes in the headers: a Stream's own media type yields to the handler's.
    headers["Content-Type"] = opened.content_type
    return Stream(
        opened.chunks(start, length),
        status_code=status,
        headers=headers,
        background=BackgroundTask(opened.aclose),
    )
