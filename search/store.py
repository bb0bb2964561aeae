"""Index generations on disk: each build writes a new folder, then one atomic rename publishes it.

Layout of an index folder::

    CURRENT            name of the published generation (replaced atomically)
    gen-000007/        one complete, immutable generation (its files: generation.py), manifest.json last
    .build.lock        held by the one process building
    embeddings.sqlite  vectors by text hash, reused across builds

A reader only follows CURRENT, which names a folder that was complete and
fsynced before CURRENT changed; a build killed half-way leaves a ``.tmp-``
folder that the next build removes, and the previous generation in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SearchError
from .generation import Generation


class IndexMissing(SearchError, FileNotFoundError):
    """No index has been built in this folder yet."""


KEEP_GENERATIONS = 2  # the current one, and the previous for readers still holding it


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

    def current(self) -> Generation:
        """Return the published generation, checked to be complete and of this format."""
        name = self.current_name()
        if name is None:
            raise IndexMissing(f"no search index in {self.root}: run 'kb index' first")
        generation = Generation(self.root / name)
        generation.manifest()
        return generation

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

    def new_generation(self) -> Generation:
        """Return a fresh temporary folder for a generation being built (removing dead ones)."""
        for stale in self.root.glob(".tmp-gen-*"):
            shutil.rmtree(stale, ignore_errors=True)
        numbers = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        path = self.root / f".tmp-gen-{max(numbers, default=0) + 1:06d}"
        path.mkdir(parents=True)
        return Generation(path)

    def publish(self, generation: Generation, meta: dict[str, Any]) -> Generation:
        """Write the manifest, flush, move the folder into place and point CURRENT at it."""
        generation.write_manifest(meta)
        fsync_tree(generation.path)
        final = self.root / generation.name.removeprefix(".tmp-")
        os.rename(generation.path, final)
        pointer = self.root / "CURRENT.tmp"
        pointer.write_text(final.name + "\n")
        with open(pointer) as handle:
            os.fsync(handle.fileno())
        os.replace(pointer, self.root / "CURRENT")
        _fsync_dir(self.root)
        self._collect(final.name)
        return Generation(final)

    def _collect(self, current: str) -> None:
        generations = sorted(p for p in self.root.glob("gen-*") if p.is_dir())
        for old in generations[:-KEEP_GENERATIONS]:
            if old.name != current:
                shutil.rmtree(old, ignore_errors=True)
