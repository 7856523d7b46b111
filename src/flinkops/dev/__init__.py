"""Local stand-ins for the services a production Flink setup depends on (ZooKeeper for HA, ...).

Each runs as a plain process bound to 127.0.0.1 with its data, pid file and log in one directory, so tests and
``flinkops dev`` commands can start, check and stop it by recorded pid.
"""
