"""Where adapters meet: a controller built for one target, and the processes that host it.

* ``local``: the SQLite store, the local process runtime, the REST client and the local provisioner (with the
  ``flinkops dev`` S3 server of the home, when one runs), for the daemon, the CLI's ``plan`` and tests;
* ``kubernetes``: the API server's store and runtime and the pods' provisioner, for the operator;
* ``daemon``: the local controller daemon's process (start, stop, status);
* ``operator`` and ``metrics``: the in-cluster operator process (leader election, sharded passes, probes).

Invariant: the controller never chooses an adapter; only this package (and the CLI, for its own reads) does.
"""
