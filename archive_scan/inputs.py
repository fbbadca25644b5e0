"""What a scan reads: image files in local folders, listed paths, or under an object-storage prefix."""
from __future__ import annotations

import os

from pyarrow.fs import FileSelector, FileSystem, FileType

from edge_runtime.cli import IMAGE_SUFFIXES, expand


def list_images(sources: list[str], filesystem=None) -> tuple[FileSystem | None, list[str]]:
    """(filesystem, paths) of the image files to scan, sorted within each source.

    Local sources are files or folders (recursive), listed exactly as `python -m edge_runtime` lists them; the
    filesystem is then None. A URI source (`s3://bucket/prefix`, options as pyarrow accepts them, e.g.
    `?endpoint_override=host:port&scheme=http`) is listed through a pyarrow filesystem (`filesystem`, or the
    one the URI names) and its paths come back as URIs without the options. One scan reads one filesystem.
    """
    remote = [source for source in sources if "://" in source]
    if not remote and filesystem is None:
        return None, expand(sources)
    if len(remote) != len(sources):
        raise ValueError("a scan reads either local paths or URIs of one object store, not both")
    if filesystem is None:
        filesystem = FileSystem.from_uri(remote[0])[0]
    paths = []
    for source in sources:
        scheme, rest = source.split("://", 1)
        paths += [f"{scheme}://{key}" for key in _list(filesystem, rest.split("?", 1)[0].rstrip("/"))]
    return filesystem, paths


def _list(filesystem: FileSystem, location: str) -> list[str]:
    """The image keys under `location` (a folder or prefix), or `location` itself when it is not a folder (a
    missing file is kept: it becomes an error row, as in the CLI)."""
    if filesystem.get_file_info(location).type != FileType.Directory:
        return [location]
    return sorted(info.path for info in filesystem.get_file_info(FileSelector(location, recursive=True))
                  if info.type == FileType.File and os.path.splitext(info.path)[1].lower() in IMAGE_SUFFIXES)


def location(path: str) -> str:
    """Where a filesystem finds a listed path: the URI without its scheme (a local path stays as it is)."""
    return path.split("://", 1)[1] if "://" in path else path
