"""Find completed checkpoints in checkpoint storage on the local file system.

A checkpoint is complete once its ``_metadata`` file exists (Flink writes it last), so a directory without
one is an attempt that never finished and is never offered for a restore.

Called by: the controller when a JobManager is gone and the job's state has to come from storage.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

__all__ = ["latest_checkpoint"]

_CHK = re.compile(r"chk-(\d+)$")


def latest_checkpoint(directory_uri: str, job_id: str) -> str | None:
    """The newest completed checkpoint of ``job_id`` under ``directory_uri`` (file:// only), or None."""
    parsed = urllib.parse.urlparse(directory_uri)
    if parsed.scheme not in ("", "file"):
        return None
    job_dir = Path(urllib.parse.unquote(parsed.path)) / job_id
    if not job_dir.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for entry in job_dir.iterdir():
        match = _CHK.match(entry.name)
        if match and (entry / "_metadata").is_file():
            number = int(match.group(1))
            if best is None or number > best[0]:
                best = (number, entry)
    return best[1].resolve().as_uri() if best else None
