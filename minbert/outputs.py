"""Write a stage's outputs as a transaction: build them beside, swap them in with renames.

    with StageOutputs() as outputs:
        clean = outputs.stage(Path("data/clean"))   # an empty staging dir inside data/clean
        table.to_parquet(clean / "sst" / "train.parquet")  # write everything under it
    # normal exit: every top-level entry of the staging dir replaces the same name in
    # data/clean (other names there are left alone); an exception: data/clean is unchanged.

Staging and backup dirs live inside the output dir (same file system, so every move is a
rename) under names starting with `.outputs-tmp-` (ignored by DVC, see .dvcignore). Each entry
is replaced by two renames (old -> backup, new -> place); if one fails, the entries already
replaced are put back, so the previous outputs stay whole. Every file-system failure becomes
an `OutputError`: one line naming the output dir and the cause, never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
TMP_PREFIX = ".outputs-tmp-"


class OutputError(OSError):
    """Outputs that cannot be written or swapped in (the previous outputs are kept)."""


def _reason(error: OSError) -> str:
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"


class StageOutputs:
    """A transaction over one or more output dirs (see the module docstring)."""

    def __init__(self) -> None:
        self._staging: dict[Path, Path] = {}  # output dir -> its staging dir
        self._created: list[Path] = []  # dirs this transaction created (removed on failure)
        self._tmp: list[Path] = []  # its staging and backup dirs (removed at the end)

    def stage(self, out_dir: str | Path) -> Path:
        """The staging dir of `out_dir` (created, with `out_dir`, on first use)."""
        out_dir = Path(out_dir)
        if out_dir in self._staging:
            return self._staging[out_dir]
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError(f"cannot write outputs in {out_dir}: it is a file, not a folder")
        missing = next((p for p in reversed([out_dir, *out_dir.parents]) if not p.exists()), None)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            if missing is not None:
                self._created.append(missing)
            staging = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out_dir))
            self._tmp.append(staging)
        except OSError as error:
            raise OutputError(f"cannot write outputs in {out_dir}: {_reason(error)}") from error
        self._staging[out_dir] = staging
        return staging

    def __enter__(self) -> StageOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        committed = False
        try:
            if exc_type is None:
                self._commit()
                committed = True
        finally:
            self._clean_up(committed)
        return False

    def _commit(self) -> None:
        done: list[tuple[Path, Path, Path | None]] = []  # (place, staged, backup)
        out_dir = None
        try:
            for out_dir, staging in self._staging.items():
                backups = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out_dir))
                self._tmp.append(backups)
                for name in sorted(os.listdir(staging)):
                    place, staged = out_dir / name, staging / name
                    backup = backups / name if os.path.lexists(place) else None
                    if backup is not None:
                        os.rename(place, backup)
                    done.append((place, staged, backup))
                    os.rename(staged, place)
        except OSError as error:
            self._roll_back(done)
            raise OutputError(f"cannot replace the outputs in {out_dir}: {_reason(error)}; "
                              "the previous outputs are unchanged") from error

    @staticmethod
    def _roll_back(done: list[tuple[Path, Path, Path | None]]) -> None:
        for place, staged, backup in reversed(done):
            try:
                if os.path.lexists(place) and not os.path.lexists(staged):
                    os.rename(place, staged)  # the new entry goes back to staging
                if backup is not None:
                    os.rename(backup, place)
            except OSError as error:  # cannot happen short of a failing disk: say what is where
                log.error("could not restore %s (previous version in %s): %s", place, backup,
                          error)

    def _clean_up(self, committed: bool) -> None:
        for tmp in self._tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if not committed:
            for created in self._created:  # made by this transaction and holding no file now
                if created.is_dir() and not any(p.is_file() for p in created.rglob("*")):
                    shutil.rmtree(created, ignore_errors=True)
