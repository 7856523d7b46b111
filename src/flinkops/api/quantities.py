"""Memory sizes and CPU amounts as a spec may write them, read the way Flink and Kubernetes read them.

Memory (``jobManager.resource.memory``, ``resources.requests.memory``, ...) may be a Flink memory size (a whole
number and an optional binary unit, case-insensitive, spaces allowed: ``2048m``, ``1g``, ``1 gb``,
``1024 mebibytes``, ``1073741824``) or a Kubernetes quantity with a unit flinkops converts (``2Gi``,
``1.5Gi``, ``2G``, ``500M``). A CPU amount is a Kubernetes quantity: a number of cores or millicores (``2``,
``0.5``, ``500m``). The forms accepted are exactly the ones the runtimes convert, so a size accepted here
never fails later when a process or a pod starts; Kubernetes' exponent forms (``1e9``) and the peta/exa units
are refused with a hint to write the value another way.

Called by: ``api.validation``; ``flink.memory`` (Flink's size syntax) and ``runtimes.kubernetes.resources`` (its
unit table). Pure.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["FLINK_MEMORY_UNITS", "cpu_cores", "flink_memory_bytes", "memory_bytes"]

_JAVA_LONG_MAX = 2**63 - 1
#: Flink's memory units (``MemorySize.MemoryUnit``, matched lowercase) in bytes.
FLINK_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "k": 2**10,
    "kb": 2**10,
    "kibibytes": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "mebibytes": 2**20,
    "g": 2**30,
    "gb": 2**30,
    "gibibytes": 2**30,
    "t": 2**40,
    "tb": 2**40,
    "tebibytes": 2**40,
}
_KUBERNETES_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "": 1,
}
_FLINK_SIZE = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")
_KUBERNETES_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_CPU = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(m?)")
_MAX_LENGTH = 64  # no quantity needs more characters; longer text is refused before any arithmetic


def memory_bytes(text: str) -> int:
    """Bytes in a memory size (Flink's syntax or a Kubernetes quantity, see the module docstring). Raises
    ``ValueError`` with a sentence for people when ``text`` is neither, or is larger than a Java long."""
    if len(text) > _MAX_LENGTH:
        raise ValueError(f"{text[:20]!r}... is not a memory size")
    flink = _FLINK_SIZE.fullmatch(text)
    if flink is not None and flink.group(2).lower() in FLINK_MEMORY_UNITS:
        size = int(flink.group(1)) * FLINK_MEMORY_UNITS[flink.group(2).lower()]
    else:
        kubernetes = _KUBERNETES_SIZE.fullmatch(text.strip())
        if kubernetes is None or kubernetes.group(2) not in _KUBERNETES_UNITS:
            raise ValueError(f"{text!r} is not a memory size")
        size = math.ceil(Decimal(kubernetes.group(1)) * _KUBERNETES_UNITS[kubernetes.group(2)])
    if size > _JAVA_LONG_MAX:
        raise ValueError(f"{text!r} is larger than Flink can hold (a Java long of bytes)")
    return size


def flink_memory_bytes(text: str) -> int:
    """Bytes in a memory size in Flink's own syntax only (``MemorySize.parse``: what Flink reads in its
    configuration, where a Kubernetes quantity such as ``2Gi`` is an error). Raises ``ValueError``."""
    flink = _FLINK_SIZE.fullmatch(text) if len(text) <= _MAX_LENGTH else None
    if flink is None or flink.group(2).lower() not in FLINK_MEMORY_UNITS:
        raise ValueError(f"{text[:_MAX_LENGTH]!r} is not a Flink memory size")
    size = int(flink.group(1)) * FLINK_MEMORY_UNITS[flink.group(2).lower()]
    if size > _JAVA_LONG_MAX:
        raise ValueError(f"{text!r} is larger than Flink can hold (a Java long of bytes)")
    return size


def cpu_cores(value: object) -> Decimal:
    """Cores in a CPU amount: a YAML number, or a Kubernetes quantity of cores or millicores. Raises
    ``ValueError`` when it is neither (booleans, ``NaN`` and infinities included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a CPU amount")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a CPU amount")
    text = str(value).strip()
    match = _CPU.fullmatch(text) if len(text) <= _MAX_LENGTH else None
    if match is None:
        raise ValueError(f"{text[:_MAX_LENGTH]!r} is not a CPU amount")
    try:
        cores = Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{text!r} is not a CPU amount") from exc
    return cores / 1000 if match.group(2) else cores
