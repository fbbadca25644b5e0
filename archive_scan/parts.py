"""The output folder: Parquet part files, each written whole (to a temporary name, then renamed).

A part file either holds all its rows or is not there, so a re-run skips exactly the paths already written.
"""
from __future__ import annotations

import os
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow.fs import FileSelector, FileSystem, FileType, LocalFileSystem

from archive_scan.rows import SCHEMA

PREFIX = "part-"
SUFFIX = ".parquet"
TEMPORARY = ".tmp"


def open_folder(out: str) -> tuple[FileSystem, str]:
    """(filesystem, folder) of a local path or a URI such as s3://bucket/results; the folder is created."""
    filesystem, folder = FileSystem.from_uri(out) if "://" in out else (LocalFileSystem(), os.path.abspath(out))
    filesystem.create_dir(folder, recursive=True)
    return filesystem, folder


def written_paths(filesystem: FileSystem, folder: str) -> set[str]:
    """The paths in the part files already written; removes leftovers of an interrupted write (temporary files,
    and part files that cannot be read, whose paths are then scanned again)."""
    done: set[str] = set()
    for info in filesystem.get_file_info(FileSelector(folder)):
        name = info.base_name
        if info.type != FileType.File or not name.startswith(PREFIX):
            continue
        if name.endswith(SUFFIX):
            try:
                done.update(pq.read_table(info.path, columns=["path"], filesystem=filesystem)["path"].to_pylist())
                continue
            except (OSError, pa.ArrowInvalid) as exc:
                print(f"warning: {info.path} cannot be read ({exc}); its files are scanned again", file=sys.stderr)
        elif not name.endswith(SUFFIX + TEMPORARY):
            continue
        filesystem.delete_file(info.path)
    return done


class PartWriter:
    """Collects result tables and writes them as part files of `rows_per_file` rows (the rest on `flush`)."""

    def __init__(self, filesystem: FileSystem, folder: str, rows_per_file: int):
        self.filesystem, self.folder, self.rows_per_file = filesystem, folder, rows_per_file
        self.run = uuid.uuid4().hex[:8]  # part names of different runs never collide
        self.pending = SCHEMA.empty_table()
        self.files = 0

    def add(self, table: pa.Table):
        self.pending = pa.concat_tables([self.pending, table])
        while self.pending.num_rows >= self.rows_per_file:
            self._write(self.pending.slice(0, self.rows_per_file))
            self.pending = self.pending.slice(self.rows_per_file)

    def flush(self):
        if self.pending.num_rows:
            self._write(self.pending)
            self.pending = SCHEMA.empty_table()

    def _write(self, table: pa.Table):
        path = f"{self.folder}/{PREFIX}{self.run}-{self.files:05d}{SUFFIX}"
        pq.write_table(table, path + TEMPORARY, filesystem=self.filesystem)
        self.filesystem.move(path + TEMPORARY, path)
        self.files += 1
