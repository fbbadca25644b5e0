"""Scan whole archives (folders, path lists, s3://... prefixes) with Ray Data into a Parquet table of verdicts.

    python -m archive_scan ARCHIVE/ --out verdicts/            # embedded local Ray
    RAY_ADDRESS=ray://head:10001 python -m archive_scan s3://bucket/images/ --out s3://bucket/verdicts/

    from archive_scan import scan
    summary = scan("archive/", "verdicts/")   # rows: archive_scan.rows.SCHEMA; summary.counts, .images_per_second

Needs the `scan` extra (Ray Data, pyarrow). edge_runtime does the judging and never imports Ray.
"""
from archive_scan.job import Summary, scan

__all__ = ["scan", "Summary"]
