"""Behaviour suites: the real controller on the fakes of ``tests/fakes``, grouped by what a user relies on.

A package so that its module names (``behaviour.test_session_jobs``) never clash with the real-Flink tests of
the same name in ``tests/integration``.
"""
