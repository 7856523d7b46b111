"""Flink's process memory model: the JVM flags and ``-D`` properties a JobManager or TaskManager starts with.

The distribution's scripts start a helper JVM (``BashJavaUtils GET_JM_RESOURCE_PARAMS`` /
``GET_TM_RESOURCE_PARAMS``) before every JobManager and TaskManager to turn the configured sizes into
``-Xmx -Xms [-XX:MaxDirectMemorySize] -XX:MaxMetaspaceSize`` and into ``-D`` dynamic properties that pin
every memory component (and, for a TaskManager, its CPU cores and slots). This module does the same
arithmetic in Python, following Flink 2.x's ``ProcessMemoryUtils``, ``JobManagerFlinkMemoryUtils`` and
``TaskExecutorFlinkMemoryUtils``:

- a size is derived from, in this order of preference, the fine-grained options (JobManager heap; TaskManager
  task heap *and* managed), the total Flink memory (``*.memory.flink.size``), the total process memory
  (``*.memory.process.size``);
- JVM overhead and (TaskManager) network and managed memory are fractions of a base, capped to their min/max;
  fractions are Java ``float`` options and products are taken the way ``MemorySize.multiply`` takes them (the
  decimal form of the double, truncated), so the bytes match to the last one.

Called by: ``runtimes/local/launch.py``. Pure (no I/O).

Invariants: for a configuration Flink accepts, the result equals what BashJavaUtils prints (the unit tests run
the real BashJavaUtils and compare); a configuration Flink rejects raises ``MemoryConfigError`` with Flink's
reason; a configuration this model does not cover (external resources) raises ``NotModelled`` so the caller can
let Flink's own scripts do it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from flinkops.api.quantities import flink_memory_bytes
from flinkops.errors import FlinkopsError, RuntimeFailure

__all__ = [
    "MemoryConfigError",
    "NotModelled",
    "ProcessResources",
    "jobmanager_resources",
    "parse_memory_size",
    "taskmanager_resources",
]

_MAX = (1 << 63) - 1  # MemorySize.MAX_VALUE


class MemoryConfigError(RuntimeFailure):
    """The memory configuration is one Flink itself would refuse to start with."""


class NotModelled(FlinkopsError):
    """The configuration uses something this model does not compute; Flink's own tooling must."""


@dataclass(frozen=True)
class ProcessResources:
    """What one process starts with: JVM flags, and the dynamic properties passed after ``--configDir``."""

    jvm_args: tuple[str, ...]
    dynamic_properties: Mapping[str, str] = field(default_factory=dict)

    def dynamic_args(self) -> list[str]:
        """``-D key=value`` pairs, as the scripts pass them."""
        return [arg for key, value in self.dynamic_properties.items() for arg in ("-D", f"{key}={value}")]


def parse_memory_size(text: str) -> int:
    """Bytes in a Flink memory size: digits and an optional binary unit (``512m``, ``1 gb``, ``1073741824``).
    The syntax is ``api.quantities``' (validation reads it the same way); here a bad size is Flink's refusal."""
    try:
        return flink_memory_bytes(text)
    except ValueError as exc:
        raise MemoryConfigError(str(exc)) from exc


# ------------------------------------------------------------------------------------------------ reading options


@dataclass(frozen=True)
class _Option:
    key: str
    default: str | None = None
    deprecated: tuple[str, ...] = ()


class _Config:
    """Typed reads of the flat configuration, with defaults and deprecated keys as Flink's ``Configuration``."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def raw(self, option: _Option) -> str | None:
        for key in (option.key, *option.deprecated):
            value = self.values.get(key)
            if value is not None and str(value).strip() != "":
                return str(value).strip()
        return None

    def contains(self, option: _Option) -> bool:
        return self.raw(option) is not None

    def size(self, option: _Option) -> int:
        text = self.raw(option) or option.default
        if text is None:
            raise MemoryConfigError(f"'{option.key}' is not set and has no default")
        try:
            return parse_memory_size(text)
        except MemoryConfigError as exc:
            raise MemoryConfigError(f"cannot read memory size from config option '{option.key}': {exc}") from exc

    def fraction(self, option: _Option) -> float:
        """A Java ``float`` option, widened to double as Flink does (``0.1`` is 0.10000000149011612)."""
        text = self.raw(option) or option.default or "0"
        try:
            value = float(text)
        except ValueError as exc:
            raise MemoryConfigError(f"'{option.key}': {text!r} is not a number") from exc
        return float(struct.unpack("f", struct.pack("f", value))[0])


@dataclass(frozen=True)
class _ProcessOptions:
    prefix: str  # "jobmanager" | "taskmanager"

    def option(self, suffix: str, default: str | None = None) -> _Option:
        return _Option(f"{self.prefix}.memory.{suffix}", default)

    @property
    def process(self) -> _Option:
        return self.option("process.size")

    @property
    def flink(self) -> _Option:
        return self.option("flink.size")

    @property
    def metaspace(self) -> _Option:
        return self.option("jvm-metaspace.size", "256m")

    @property
    def overhead_min(self) -> _Option:
        return self.option("jvm-overhead.min", "192m")

    @property
    def overhead_max(self) -> _Option:
        return self.option("jvm-overhead.max", "1g")

    @property
    def overhead_fraction(self) -> _Option:
        return self.option("jvm-overhead.fraction", "0.1")


_JM = _ProcessOptions("jobmanager")
_TM = _ProcessOptions("taskmanager")
_JM_HEAP = _Option("jobmanager.memory.heap.size")
_JM_OFF_HEAP = _Option("jobmanager.memory.off-heap.size", "128m")
_JM_DIRECT_LIMIT = _Option("jobmanager.memory.enable-jvm-direct-memory-limit", "false")
_TM_FRAMEWORK_HEAP = _Option("taskmanager.memory.framework.heap.size", "128m")
_TM_FRAMEWORK_OFF_HEAP = _Option("taskmanager.memory.framework.off-heap.size", "128m")
_TM_TASK_HEAP = _Option("taskmanager.memory.task.heap.size")
_TM_TASK_OFF_HEAP = _Option("taskmanager.memory.task.off-heap.size", "0b")
_TM_MANAGED = _Option("taskmanager.memory.managed.size", None, ("taskmanager.memory.size",))
_TM_MANAGED_FRACTION = _Option("taskmanager.memory.managed.fraction", "0.4")
_TM_NETWORK_MIN = _Option("taskmanager.memory.network.min", "64m", ("taskmanager.network.memory.min",))
_TM_NETWORK_MAX = _Option("taskmanager.memory.network.max", str(_MAX), ("taskmanager.network.memory.max",))
_TM_NETWORK_FRACTION = _Option("taskmanager.memory.network.fraction", "0.1", ("taskmanager.network.memory.fraction",))
_TM_CPU_CORES = _Option("taskmanager.cpu.cores")
_TM_SLOTS = _Option("taskmanager.numberOfTaskSlots", "1")
_EXTERNAL_RESOURCES = _Option("external-resources")


# ------------------------------------------------------------------------------------------------ arithmetic


@dataclass(frozen=True)
class _Range:
    min: int
    max: int
    fraction: float


def _range(config: _Config, low: _Option, high: _Option, fraction: _Option) -> _Range:
    lo, hi, frac = config.size(low), config.size(high), config.fraction(fraction)
    if lo > hi or not 0 <= frac < 1:
        raise MemoryConfigError(
            f"inconsistently configured '{fraction.key}' ({frac}) and its min ({lo} bytes), max ({hi} bytes) value"
        )
    return _Range(lo, hi, frac)


def _multiply(size: int, factor: float) -> int:
    """``MemorySize.multiply``: the exact product with the double's shortest decimal form, truncated."""
    product = Decimal(size) * Decimal(repr(factor))
    if product > _MAX:
        raise MemoryConfigError("memory size overflows a Java long")
    return int(product)


def _cap(size: int, bounds: _Range) -> int:
    return bounds.max if size > bounds.max else bounds.min if size < bounds.min else size


def _with_fraction(base: int, bounds: _Range) -> int:
    return _cap(_multiply(base, bounds.fraction), bounds)


def _with_inverse_fraction(base: int, bounds: _Range) -> int:
    return _cap(_multiply(base, bounds.fraction / (1 - bounds.fraction)), bounds)


@dataclass(frozen=True)
class _JvmParts:
    metaspace: int
    overhead: int


def _overhead_range(config: _Config, opts: _ProcessOptions) -> _Range:
    return _range(config, opts.overhead_min, opts.overhead_max, opts.overhead_fraction)


def _jvm_parts_from_process(config: _Config, opts: _ProcessOptions, process: int) -> _JvmParts:
    parts = _JvmParts(config.size(opts.metaspace), _with_fraction(process, _overhead_range(config, opts)))
    if parts.metaspace + parts.overhead > process:
        raise MemoryConfigError(
            f"sum of JVM Metaspace ({parts.metaspace} bytes) and JVM Overhead ({parts.overhead} bytes) exceeds the "
            f"configured Total Process Memory ({process} bytes, '{opts.process.key}')"
        )
    return parts


def _jvm_parts_from_flink(config: _Config, opts: _ProcessOptions, flink: int) -> _JvmParts:
    metaspace = config.size(opts.metaspace)
    bounds = _overhead_range(config, opts)
    if config.contains(opts.process):
        process = config.size(opts.process)
        if process < flink + metaspace:
            raise MemoryConfigError(
                f"the configured Total Process Memory ({process} bytes) is less than the derived Total Flink Memory "
                f"({flink} bytes) plus JVM Metaspace ({metaspace} bytes)"
            )
        overhead = process - flink - metaspace
        if not bounds.min <= overhead <= bounds.max:
            raise MemoryConfigError(
                f"derived JVM Overhead ({overhead} bytes) is not in the configured JVM Overhead range "
                f"[{bounds.min}, {bounds.max}] bytes"
            )
        return _JvmParts(metaspace, overhead)
    return _JvmParts(metaspace, _with_inverse_fraction(flink + metaspace, bounds))


def _positive_total(flink: int, opts: _ProcessOptions) -> None:
    if flink < 0:
        raise MemoryConfigError(f"the memory components exceed the configured total memory of {opts.prefix}")


# ------------------------------------------------------------------------------------------------ JobManager


def jobmanager_resources(values: Mapping[str, str]) -> ProcessResources:
    """What ``BashJavaUtils GET_JM_RESOURCE_PARAMS`` prints for this configuration."""
    config = _Config(values)
    heap: int
    off_heap = config.size(_JM_OFF_HEAP)
    if config.contains(_JM_HEAP):
        heap = config.size(_JM_HEAP)
        if config.contains(_JM.flink):
            flink = config.size(_JM.flink)
            if config.contains(_JM_OFF_HEAP):
                if heap + off_heap != flink:
                    raise MemoryConfigError(
                        f"JVM Heap ({heap} bytes) and Off-heap ({off_heap} bytes) do not add up to the configured "
                        f"Total Flink Memory ({flink} bytes)"
                    )
            elif flink < heap:
                raise MemoryConfigError(f"JVM Heap ({heap} bytes) exceeds Total Flink Memory ({flink} bytes)")
            else:
                off_heap = flink - heap
        jvm = _jvm_parts_from_flink(config, _JM, heap + off_heap)
    elif config.contains(_JM.flink) or config.contains(_JM.process):
        if config.contains(_JM.flink):
            flink = config.size(_JM.flink)
            jvm = _jvm_parts_from_flink(config, _JM, flink)
        else:
            jvm = _jvm_parts_from_process(config, _JM, config.size(_JM.process))
            flink = config.size(_JM.process) - jvm.metaspace - jvm.overhead
        if flink <= off_heap:
            raise MemoryConfigError(
                f"the Total Flink Memory ({flink} bytes) is not more than the Off-heap Memory ({off_heap} bytes)"
            )
        heap = flink - off_heap
    else:
        raise _nothing_configured(_JM, (_JM_HEAP,))
    direct_limit = (config.raw(_JM_DIRECT_LIMIT) or "false").lower() == "true"
    jvm_args = [f"-Xmx{heap}", f"-Xms{heap}"]
    if direct_limit:
        jvm_args.append(f"-XX:MaxDirectMemorySize={off_heap}")
    jvm_args.append(f"-XX:MaxMetaspaceSize={jvm.metaspace}")
    dynamic = {
        _JM_HEAP.key: f"{heap}b",
        _JM_OFF_HEAP.key: f"{off_heap}b",
        _JM.metaspace.key: f"{jvm.metaspace}b",
        _JM.overhead_min.key: f"{jvm.overhead}b",
        _JM.overhead_max.key: f"{jvm.overhead}b",
    }
    return ProcessResources(tuple(jvm_args), dynamic)


# ------------------------------------------------------------------------------------------------ TaskManager


@dataclass(frozen=True)
class _TaskManagerMemory:
    framework_heap: int
    framework_off_heap: int
    task_heap: int
    task_off_heap: int
    network: int
    managed: int

    @property
    def total(self) -> int:
        return (
            self.framework_heap
            + self.framework_off_heap
            + self.task_heap
            + self.task_off_heap
            + self.network
            + self.managed
        )


def _network_range(config: _Config) -> _Range:
    return _range(config, _TM_NETWORK_MIN, _TM_NETWORK_MAX, _TM_NETWORK_FRACTION)


def _check_network(config: _Config, network: int) -> None:
    bounds = _network_range(config)
    if not bounds.min <= network <= bounds.max:
        raise MemoryConfigError(
            f"the Network Memory left over by the explicitly configured sizes ({network} bytes) is not in the "
            f"configured Network Memory range [{bounds.min}, {bounds.max}] bytes"
        )


def _managed(config: _Config, base: int) -> int:
    if config.contains(_TM_MANAGED):
        return config.size(_TM_MANAGED)
    fraction = config.fraction(_TM_MANAGED_FRACTION)
    if not 0 <= fraction < 1:
        raise MemoryConfigError(f"'{_TM_MANAGED_FRACTION.key}' must be in [0, 1)")
    return _multiply(base, fraction)


def _tm_from_fine_grained(config: _Config) -> _TaskManagerMemory:
    fixed = _TaskManagerMemory(
        framework_heap=config.size(_TM_FRAMEWORK_HEAP),
        framework_off_heap=config.size(_TM_FRAMEWORK_OFF_HEAP),
        task_heap=config.size(_TM_TASK_HEAP),
        task_off_heap=config.size(_TM_TASK_OFF_HEAP),
        network=0,
        managed=config.size(_TM_MANAGED),
    )
    if config.contains(_TM.flink):
        flink = config.size(_TM.flink)
        if fixed.total > flink:
            raise MemoryConfigError(f"the configured TaskManager memory components exceed Total Flink Memory ({flink})")
        network = flink - fixed.total
        _check_network(config, network)
    else:
        network = _with_inverse_fraction(fixed.total, _network_range(config))
    return _replace_network(fixed, network)


def _replace_network(memory: _TaskManagerMemory, network: int) -> _TaskManagerMemory:
    return _TaskManagerMemory(
        memory.framework_heap,
        memory.framework_off_heap,
        memory.task_heap,
        memory.task_off_heap,
        network,
        memory.managed,
    )


def _tm_from_flink(config: _Config, flink: int) -> _TaskManagerMemory:
    framework_heap = config.size(_TM_FRAMEWORK_HEAP)
    framework_off_heap = config.size(_TM_FRAMEWORK_OFF_HEAP)
    task_off_heap = config.size(_TM_TASK_OFF_HEAP)
    managed = _managed(config, flink)
    if config.contains(_TM_TASK_HEAP):
        task_heap = config.size(_TM_TASK_HEAP)
        network = flink - (framework_heap + framework_off_heap + task_heap + task_off_heap + managed)
        if network < 0:
            raise MemoryConfigError(f"the configured TaskManager memory components exceed Total Flink Memory ({flink})")
        _check_network(config, network)
    else:
        network = _with_fraction(flink, _network_range(config))
        task_heap = flink - (framework_heap + framework_off_heap + task_off_heap + managed + network)
        if task_heap < 0:
            raise MemoryConfigError(
                f"framework, task off-heap, managed and network memory exceed Total Flink Memory ({flink} bytes)"
            )
    return _TaskManagerMemory(framework_heap, framework_off_heap, task_heap, task_off_heap, network, managed)


def _cpu_cores(config: _Config) -> float:
    text = config.raw(_TM_CPU_CORES)
    try:
        cores = float(text) if text is not None else float(int(config.raw(_TM_SLOTS) or "1"))
    except ValueError as exc:
        raise MemoryConfigError(f"'{_TM_CPU_CORES.key}' / '{_TM_SLOTS.key}' is not a number") from exc
    if cores <= 0:
        raise MemoryConfigError(f"'{_TM_CPU_CORES.key}' must be positive, not {cores}")
    return cores


def _java_double(value: float) -> str:
    """``String.valueOf(double)`` in the range where Java writes plain decimals (CPU counts live there)."""
    if not 1e-3 <= value < 1e7:
        raise NotModelled(f"'{_TM_CPU_CORES.key}' = {value}: outside the range this model prints like Java")
    return repr(value)


def taskmanager_resources(values: Mapping[str, str]) -> ProcessResources:
    """What ``BashJavaUtils GET_TM_RESOURCE_PARAMS`` prints for this configuration."""
    config = _Config(values)
    external = (config.raw(_EXTERNAL_RESOURCES) or "").strip()
    if external and external.lower() != "none":
        raise NotModelled("external resources ('external-resources') are computed by Flink's own scripts")
    if config.contains(_TM_TASK_HEAP) and config.contains(_TM_MANAGED):
        memory = _tm_from_fine_grained(config)
        jvm = _jvm_parts_from_flink(config, _TM, memory.total)
    elif config.contains(_TM.flink):
        memory = _tm_from_flink(config, config.size(_TM.flink))
        jvm = _jvm_parts_from_flink(config, _TM, memory.total)
    elif config.contains(_TM.process):
        process = config.size(_TM.process)
        jvm = _jvm_parts_from_process(config, _TM, process)
        flink = process - jvm.metaspace - jvm.overhead
        _positive_total(flink, _TM)
        memory = _tm_from_flink(config, flink)
    else:
        raise _nothing_configured(_TM, (_TM_TASK_HEAP, _TM_MANAGED))
    if config.contains(_TM.flink) and memory.total != config.size(_TM.flink):
        raise MemoryConfigError(
            f"the TaskManager memory components ({memory.total} bytes) do not add up to the configured Total Flink "
            f"Memory ({config.size(_TM.flink)} bytes)"
        )
    heap = memory.framework_heap + memory.task_heap
    direct = memory.framework_off_heap + memory.task_off_heap + memory.network
    try:
        slots = int(config.raw(_TM_SLOTS) or "1")
    except ValueError as exc:
        raise MemoryConfigError(f"'{_TM_SLOTS.key}' is not a whole number") from exc
    jvm_args = (
        f"-Xmx{heap}",
        f"-Xms{heap}",
        f"-XX:MaxDirectMemorySize={direct}",
        f"-XX:MaxMetaspaceSize={jvm.metaspace}",
    )
    dynamic = {
        _TM_CPU_CORES.key: _java_double(_cpu_cores(config)),
        _TM_FRAMEWORK_HEAP.key: f"{memory.framework_heap}b",
        _TM_FRAMEWORK_OFF_HEAP.key: f"{memory.framework_off_heap}b",
        _TM_TASK_HEAP.key: f"{memory.task_heap}b",
        _TM_TASK_OFF_HEAP.key: f"{memory.task_off_heap}b",
        _TM_NETWORK_MIN.key: f"{memory.network}b",
        _TM_NETWORK_MAX.key: f"{memory.network}b",
        _TM_MANAGED.key: f"{memory.managed}b",
        _TM.metaspace.key: f"{jvm.metaspace}b",
        _TM.overhead_min.key: f"{jvm.overhead}b",
        _TM.overhead_max.key: f"{jvm.overhead}b",
        _TM_SLOTS.key: str(slots),
        _EXTERNAL_RESOURCES.key: "none",
    }
    return ProcessResources(jvm_args, dynamic)


def _nothing_configured(opts: _ProcessOptions, fine_grained: tuple[_Option, ...]) -> MemoryConfigError:
    keys = " and ".join(o.key for o in fine_grained)
    return MemoryConfigError(
        f"either the fine-grained memory ({keys}), or '{opts.flink.key}', or '{opts.process.key}' must be configured"
    )
