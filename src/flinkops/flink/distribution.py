"""Find the Flink distribution shipped inside the installed ``apache-flink`` wheel.

``pyflink/`` in site-packages is a complete FLINK_HOME (bin/, lib/, opt/, conf/, plugins/). flinkops never
writes inside it: each cluster gets its own conf, lib and log directories that point back here.

Called by: the local runtime, benchmarks, ``flinkops controller status``.
"""

from __future__ import annotations

import functools
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from flinkops.errors import PermanentError

__all__ = ["FlinkDistribution", "find_distribution"]


@dataclass(frozen=True)
class FlinkDistribution:
    home: Path
    version: str
    java: str

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def lib(self) -> Path:
        return self.home / "lib"

    @property
    def opt(self) -> Path:
        return self.home / "opt"

    @property
    def plugins(self) -> Path:
        return self.home / "plugins"

    def lib_jars(self) -> list[Path]:
        return sorted(self.lib.glob("*.jar"))

    def python_jar(self) -> Path:
        jars = sorted(self.opt.glob("flink-python*.jar"))
        if not jars:
            raise PermanentError(f"no flink-python jar in {self.opt}: reinstall apache-flink")
        return jars[0]


@functools.cache
def find_distribution() -> FlinkDistribution:
    """The distribution of the installed apache-flink wheel; a clear error when it is missing."""
    try:
        import pyflink
    except ImportError as exc:
        raise PermanentError(
            "apache-flink is not installed in this Python environment: run `make install` "
            "(or pip install 'flinkops[flink]')"
        ) from exc
    home = Path(pyflink.__file__).resolve().parent
    dist_jars = sorted((home / "lib").glob("flink-dist-*.jar"))
    if not (home / "bin").is_dir() or not dist_jars:
        raise PermanentError(f"{home} is not a complete Flink distribution (no bin/ or lib/flink-dist jar)")
    match = re.search(r"flink-dist-(.+)\.jar$", dist_jars[0].name)
    java = shutil.which("java")
    if java is None:
        raise PermanentError("no `java` on PATH: Flink needs Java 11 or 17 (apt-get install openjdk-17-jre)")
    return FlinkDistribution(home=home, version=match.group(1) if match else "unknown", java=java)
