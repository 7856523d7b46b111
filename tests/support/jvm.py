"""The JVM flags the tests give the Flink processes they start, through ``JVM_ARGS``.

The local runtime (``runtimes/local/launch.py``) puts ``JVM_ARGS`` first on every Flink ``java`` command line, as
Flink's own scripts do. Only the C1 compiler and the serial collector: a JVM start then costs far less CPU (a
verifier job was RUNNING 8-12 s after ``flinkops apply`` instead of 18-24 s, on the shared 2-core machine with
other test runs), and the test jobs' few hundred records a second need no C2 code. No test measures Flink's
throughput. The benchmarks have their own driver and do not use these flags, nor does ``support.rawflink`` (the
raw-Flink baseline the benchmarks compare flinkops with).

Called by: ``integration.flinkops_cli.Flinkops.env`` (every controller an integration test starts) and
tests/kubernetes/conftest.py (the node's pods get the same flags as ``env.java.opts.all``, through
``support.nodestack.Stack.jvm_args``). Invariant: a ``JVM_ARGS`` already in the environment is kept as it is, and
so is a deployment's own ``env.java.opts.all``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TEST_JVM_ARGS", "with_test_jvm_args"]

TEST_JVM_ARGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def with_test_jvm_args(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``JVM_ARGS`` set to :data:`TEST_JVM_ARGS` unless it already has one."""
    return {"JVM_ARGS": TEST_JVM_ARGS, **env}
