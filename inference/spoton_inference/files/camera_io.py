"""An environment's cameras as CSV or JSON files: parsed for import, written for export.

One table shape serves both formats (the columns are documented on ``ImportCamerasRequest``
in cameras.proto). A column left out of the file keeps each camera's stored value; an empty
cell (JSON ``null``) clears what can be cleared. Passwords are read on import and never
written: an export carries ``password_set`` instead.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
from collections.abc import Callable
from typing import Any

from spoton_inference.domain.camera_source import SourceInput, SourceKind
from spoton_inference.domain.environment import Camera, Environment
from spoton_inference.domain.errors import InvalidFields
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.files.environment_dir import scan_sub_videos
from spoton_inference.services.catalog import (
    CameraPatch,
    CameraSpec,
    Catalog,
    new_camera,
    patched_camera,
)


class FileFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


MEDIA_TYPES = {FileFormat.CSV: "text/csv", FileFormat.JSON: "application/json"}
EXPORT_COLUMNS = (
    "camera_id",
    "name",
    "group_id",
    "source_kind",
    "source_url",
    "source_username",
    "password_set",
    "fps",
    "width",
    "height",
    "detection_threshold",
    "location",
    "enabled",
    "homography",
)
# Read on import only; password_set is accepted (an exported file imports as is) and ignored.
IMPORT_COLUMNS = (*EXPORT_COLUMNS, "source_password")
IGNORED_COLUMNS = ("password_set",)


@dataclasses.dataclass(frozen=True, slots=True)
class RowError:
    # 1 for the first camera of the file; 0 for the file as a whole.
    row: int
    camera_id: str
    field: str
    message: str


@dataclasses.dataclass(slots=True)
class ImportRow:
    row: int
    camera_id: str
    # Column -> parsed value; None for an empty cell. A column left out of the file is absent.
    values: dict[str, Any]
    errors: list[RowError]

    def to_spec(self) -> CameraSpec:
        """The row as a new camera: left-out columns take the defaults."""
        v = self.values
        enabled = v.get("enabled")
        return CameraSpec(
            camera_id=self.camera_id,
            name=v.get("name") or "",
            fps=v.get("fps") or 0.0,
            width=v.get("width") or 0,
            height=v.get("height") or 0,
            homography=v.get("homography"),
            group_id=v.get("group_id") or "",
            source=self._source(None),
            detection_threshold=v.get("detection_threshold"),
            location=v.get("location") or "",
            enabled=True if enabled is None else enabled,
        )

    def to_patch(self, camera: Camera) -> CameraPatch:
        """The row as changes to ``camera``: left-out columns and empty cells of required fields keep it."""
        v = self.values

        def cleared(column: str) -> bool:
            return column in v and v[column] is None

        return CameraPatch(
            name=v.get("name"),
            fps=v.get("fps"),
            width=v.get("width"),
            height=v.get("height"),
            homography=v.get("homography"),
            clear_homography=cleared("homography"),
            group_id=(v["group_id"] or "") if "group_id" in v else None,
            source=self._source(camera),
            detection_threshold=v.get("detection_threshold"),
            clear_detection_threshold=cleared("detection_threshold"),
            location=(v["location"] or "") if "location" in v else None,
            enabled=v.get("enabled"),
        )

    def _source(self, camera: Camera | None) -> SourceInput | None:
        v = self.values
        columns = ("source_kind", "source_url", "source_username", "source_password")
        if all(v.get(c) is None for c in columns):
            return None
        # Left-out URL and user name columns keep the stored ones (a file that only rotates passwords).
        current = camera.source if camera is not None else None
        url = v["source_url"] if "source_url" in v else (current.url if current else "")
        username = v["source_username"] if "source_username" in v else (current.username if current else "")
        return SourceInput(
            kind=v.get("source_kind"), url=url or "", username=username or "", password=v.get("source_password")
        )


def parse_cameras(content: bytes, file_format: FileFormat) -> tuple[list[ImportRow], list[RowError]]:
    """The file's rows, each with its own parse errors, and the errors of the file as a whole."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [RowError(0, "", "", f"the file is not UTF-8 text (byte {exc.start})")]
    records = _csv_records(text) if file_format == FileFormat.CSV else _json_records(text)
    if isinstance(records, RowError):
        return [], [records]
    if not records:
        return [], [RowError(0, "", "", "the file has no cameras")]
    return [_parse_record(i, record) for i, record in enumerate(records, start=1)], []


def export_cameras(env: Environment, file_format: FileFormat) -> bytes:
    rows = [_export_row(c) for c in env.cameras]
    if file_format == FileFormat.JSON:
        return json.dumps({"environment_id": env.environment_id, "cameras": rows}, indent=2).encode()
    out = io.StringIO()
    writer = csv.DictWriter(out, EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue().encode()


def export_filename(environment_id: str, file_format: FileFormat) -> str:
    return f"{environment_id}-cameras.{file_format}"


def _export_row(cam: Camera) -> dict[str, Any]:
    homography = None
    if cam.homography is not None:
        h = cam.homography
        homography = {"matrix": h.matrix.reshape(-1).tolist()}
        if h.image_points:
            homography |= {"image_points": [list(p) for p in h.image_points]}
            homography |= {"map_points": [list(p) for p in h.map_points]}
    return {
        "camera_id": cam.camera_id,
        "name": cam.name,
        "group_id": cam.group_id or "",
        "source_kind": str(cam.source.kind),
        "source_url": cam.source.url,
        "source_username": cam.source.username,
        "password_set": cam.source.password_set,
        "fps": cam.fps,
        "width": cam.width,
        "height": cam.height,
        "detection_threshold": cam.detection_threshold,
        "location": cam.location,
        "enabled": cam.enabled,
        "homography": homography,
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# -- reading -------------------------------------------------------------------------------


def _csv_records(text: str) -> list[dict[str, Any]] | RowError:
    lines = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)]
    if not lines:
        return []
    header = [h.strip() for h in lines[0]]
    problem = _check_columns(header)
    if problem is not None:
        return problem
    records: list[dict[str, Any]] = []
    for cells in lines[1:]:
        record: dict[str, Any] = dict(zip(header, (c.strip() or None for c in cells), strict=False))
        if len(cells) != len(header):
            record["__cells__"] = f"the row has {len(cells)} cells, the header {len(header)}"
        records.append(record)
    return records


def _json_records(text: str) -> list[dict[str, Any]] | RowError:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return RowError(0, "", "", f"the file is not valid JSON: {exc}")
    cameras = doc.get("cameras") if isinstance(doc, dict) else doc
    if not isinstance(cameras, list):
        return RowError(0, "", "", 'the file must hold {"cameras": [...]} or a list of cameras')
    if not all(isinstance(c, dict) for c in cameras):
        return RowError(0, "", "", "every camera must be a JSON object")
    problem = _check_columns(sorted({k for c in cameras for k in c}))
    return problem if problem is not None else cameras


def _check_columns(columns: list[str]) -> RowError | None:
    unknown = [c for c in columns if c not in IMPORT_COLUMNS]
    if unknown:
        return RowError(0, "", unknown[0], f"unknown column {unknown[0]!r} (known: {', '.join(IMPORT_COLUMNS)})")
    if len(set(columns)) != len(columns):
        return RowError(0, "", "", "a column appears twice in the header")
    if "camera_id" not in columns:
        return RowError(0, "", "camera_id", "the camera_id column is required")
    return None


def _parse_record(row: int, record: dict[str, Any]) -> ImportRow:
    camera_id = record.get("camera_id")
    camera_id = camera_id if isinstance(camera_id, str) else ""
    parsed = ImportRow(row, camera_id, {}, [])
    if "__cells__" in record:
        parsed.errors.append(RowError(row, camera_id, "", record.pop("__cells__")))
    for column, value in record.items():
        if column in IGNORED_COLUMNS:
            continue
        if value is None or value == "":
            parsed.values[column] = None
            continue
        try:
            parsed.values[column] = PARSERS[column](value)
        except ValueError as exc:
            parsed.errors.append(RowError(row, camera_id, column, f"{column}: {exc}"))
    if not camera_id:
        parsed.errors.append(RowError(row, "", "camera_id", "camera_id is required"))
    return parsed


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None


def _integer(value: Any) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError(f"must be a whole number, got {value!r}")
    return int(number)


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"must be true or false, got {value!r}")


def _source_kind(value: Any) -> SourceKind:
    try:
        return SourceKind(_text(value).strip().lower())
    except ValueError:
        raise ValueError(f"must be one of {', '.join(SourceKind)}, got {value!r}") from None


def _homography(value: Any) -> HomographySpec:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object: {exc}") from None
    if not isinstance(value, dict) or set(value) - {"image_points", "map_points", "matrix"}:
        raise ValueError('must be {"image_points": [[u, v], ...], "map_points": [[x, y], ...], "matrix": [...]}')
    try:
        return HomographySpec(
            image_points=tuple((float(u), float(v)) for u, v in value.get("image_points") or ()),
            map_points=tuple((float(x), float(y)) for x, y in value.get("map_points") or ()),
            matrix=tuple(float(m) for m in value.get("matrix") or ()),
        )
    except (TypeError, ValueError):
        raise ValueError("points must be [number, number] pairs and matrix a list of numbers") from None


PARSERS: dict[str, Callable[[Any], Any]] = {
    "camera_id": _text,
    "name": _text,
    "group_id": _text,
    "source_kind": _source_kind,
    "source_url": _text,
    "source_username": _text,
    "source_password": _text,
    "fps": _number,
    "width": _integer,
    "height": _integer,
    "detection_threshold": _number,
    "location": _text,
    "enabled": _boolean,
    "homography": _homography,
}


@dataclasses.dataclass(frozen=True, slots=True)
class ImportResult:
    applied: bool
    errors: tuple[RowError, ...]
    created: tuple[str, ...]
    updated: tuple[str, ...]


async def import_cameras(
    catalog: Catalog, environment_id: str, content: bytes, file_format: FileFormat, *, dry_run: bool = False
) -> ImportResult:
    """Create or update (upsert) the file's cameras in one write; nothing at all when any row is bad."""
    rows, errors = parse_cameras(content, file_format)
    created: list[str] = []
    updated: list[str] = []

    def edit(env: Environment) -> tuple[Camera, ...] | None:
        cameras = {c.camera_id: c for c in env.cameras}
        seen: dict[str, int] = {}
        for r in rows:
            errors.extend(r.errors)
            if r.camera_id in seen:
                errors.append(RowError(r.row, r.camera_id, "camera_id", f"camera_id repeats row {seen[r.camera_id]}"))
                continue
            seen[r.camera_id] = r.row
            if any(e.field == "camera_id" for e in r.errors):
                continue
            existing = cameras.get(r.camera_id)
            try:
                if existing is None:
                    camera = new_camera(r.to_spec(), env, scan_sub_videos)
                else:
                    camera = patched_camera(existing, r.to_patch(existing), env)
            except InvalidFields as exc:
                # A column that did not parse was left out; what that made invalid is the same fault.
                failed = {e.field for e in r.errors}
                columns = ((f.replace(".", "_"), m) for f, m in exc.errors)
                errors.extend(RowError(r.row, r.camera_id, f, m) for f, m in columns if f not in failed)
                continue
            (updated if existing else created).append(r.camera_id)
            cameras[r.camera_id] = camera
        return None if errors or dry_run else tuple(cameras.values())

    await catalog.edit_cameras(environment_id, edit)
    return ImportResult(not errors and not dry_run, tuple(errors), tuple(created), tuple(updated))
