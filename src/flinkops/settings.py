"""Where flinkops keeps its state on this machine.

``FLINKOPS_HOME`` (default ``./.flinkops``) holds the resource store, the controller's pid and log, each
cluster's processes and logs, and default checkpoint/savepoint storage. Kept import-light on purpose: every
CLI command reads it, and ``flinkops get`` must answer fast.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SOURCE_DIR_ANNOTATION", "USRLIB_ANNOTATION", "default_home", "default_state_uri", "store_path"]

# Set by `flinkops apply` to the directory of the YAML file; relative paths in a job (jar, -py script)
# resolve against it on the local runtime.
SOURCE_DIR_ANNOTATION = "flinkops.io/source-dir"
# The directory the official image's /opt/flink/usrlib/ means on the local runtime (default: the YAML's
# directory); a relative value is taken from the YAML's directory when applied.
USRLIB_ANNOTATION = "flinkops.io/usrlib"


def default_home() -> Path:
    return Path(os.environ.get("FLINKOPS_HOME", ".flinkops")).resolve()


def store_path(home: Path) -> Path:
    return home / "flinkops.db"


def default_state_uri(home: Path, namespace: str, name: str) -> str:
    """Where a deployment's checkpoints and savepoints go when its spec names no directory."""
    return (home / "state" / namespace / name).resolve().as_uri()
