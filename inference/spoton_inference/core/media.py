"""Publishing files under the media root, which the facade serves with HTTP Range.

Files are hard-linked when the media root is on the same filesystem (no copy of a video),
else copied; either way through a temporary name, so a URL never serves half a file.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> src = root / "in.txt"; _ = src.write_text("hi")
    >>> MediaRoot(root / "media", "/api/v1/media").publish(src, Path("envs", "a.txt"))
    '/api/v1/media/envs/a.txt'
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path


@dataclasses.dataclass(frozen=True, slots=True)
class MediaRoot:
    root: Path
    url_prefix: str

    def publish(self, src: Path, rel: Path, *, replace: bool = False, copy: bool = False) -> str:
        """Make ``src`` servable at ``rel``; returns its URL. Kept as is unless ``replace``;
        ``copy`` always copies (``src`` keeps a single link)."""
        dst = self.root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if replace or not dst.exists():
            tmp = dst.with_name(dst.name + ".part")
            tmp.unlink(missing_ok=True)
            try:
                if copy:
                    raise OSError("copy asked for")
                os.link(src, tmp)
            except OSError:  # another filesystem: copy instead
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        return self.url(rel)

    def unpublish(self, rel: Path) -> None:
        """Serve nothing under ``rel`` any more (a file or a whole directory)."""
        target = self.root / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def url(self, rel: Path) -> str:
        return f"{self.url_prefix}/{rel.as_posix()}"
