"""Index generations on disk: each build writes a new folder, then one atomic rename publishes it.

Layout of an index folder::

    CURRENT            name of the published generation (replaced atomically)
    gen-000007/        one complete, immutable index: manifest.json last
    .build.lock        held by the one process building
    embeddings.sqlite  vectors by text hash, reused across builds

A reader only follows CURRENT, which names a folder that was complete and
fsynced before CURRENT changed; a build killed half-way leaves a ``.tmp-``
folder that the next build removes, and the previous generation in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SearchError

FORMAT_VERSION = 3  # bump when the analyzer or any file's layout changes: old indexes are rebuilt
KEEP_GENERATIONS = 2  # the current one, and the previous for readers still holding it


class IndexMissing(SearchError, FileNotFoundError):
    """No index has been built in this folder yet."""


class IndexCorrupt(SearchError, RuntimeError):
    """The published index is incomplete or unreadable; rebuild it with ``kb index``."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush every file and folder below ``path`` to disk."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


class IndexStore:
    """The generations of one index folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def cache_path(self) -> Path:
        return self.root / "embeddings.sqlite"

    def current_name(self) -> str | None:
        """Return the published generation's folder name, or None before the first build."""
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def current(self) -> Path:
        """Return the published generation's folder, checked to be complete."""
        name = self.current_name()
        if name is None:
            raise IndexMissing(f"no search index in {self.root}: run 'kb index' first")
        path = self.root / name
        manifest = self.manifest(path)
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorrupt(f"{path} was built by another version (format {manifest.get('format')})")
        return path

    @staticmethod
    def manifest(path: Path) -> dict[str, Any]:
        try:
            data = json.loads((path / "manifest.json").read_text())
        except FileNotFoundError:
            raise IndexCorrupt(f"{path} has no manifest: the index is incomplete") from None
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(f"{path}/manifest.json is unreadable: {exc}") from None
        if not isinstance(data, dict):
            raise IndexCorrupt(f"{path}/manifest.json is not an object")
        for name, size in data.get("files", {}).items():
            file = path / name
            if not file.exists() or file.stat().st_size != size:
                raise IndexCorrupt(f"{file} is missing or truncated")
        return data

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[None]:
        """Hold the folder's build lock; a second builder waits. The OS frees it if we die."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".build.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def new_folder(self) -> Path:
        """Return a fresh temporary folder for a generation being built (removing dead ones)."""
        for stale in self.root.glob(".tmp-gen-*"):
            shutil.rmtree(stale, ignore_errors=True)
        numbers = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        path = self.root / f".tmp-gen-{max(numbers, default=0) + 1:06d}"
        path.mkdir(parents=True)
        return path

    def publish(self, folder: Path, manifest: dict[str, Any]) -> Path:
        """Write the manifest, flush, move the folder into place and point CURRENT at it."""
        # files.json is the builder's note of file timestamps, rewritten when only they change:
        # not part of what readers check.
        manifest = {**manifest, "format": FORMAT_VERSION,
                    "files": {str(p.relative_to(folder)): p.stat().st_size
                              for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "files.json"}}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
        fsync_tree(folder)
        final = self.root / folder.name.removeprefix(".tmp-")
        os.rename(folder, final)
        pointer = self.root / "CURRENT.tmp"
        pointer.write_text(final.name + "\n")
        with open(pointer) as handle:
            os.fsync(handle.fileno())
        os.replace(pointer, self.root / "CURRENT")
        _fsync_dir(self.root)
        self._collect(final.name)
        return final

    def _collect(self, current: str) -> None:
        generations = sorted(p for p in self.root.glob("gen-*") if p.is_dir())
        for old in generations[:-KEEP_GENERATIONS]:
            if old.name != current:
                shutil.rmtree(old, ignore_errors=True)
