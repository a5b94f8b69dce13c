"""Lifecycle operations: one module per operation, each a list of named steps.

The CLI runs an operation's steps in a row (its ``put``/``promote``/``rotate``/
``respond`` function); the Prefect flow runs the same step functions as tasks
and adds only retries, reports and events. Steps take the engine
(:class:`weightvault.artifacts.Vault`) plus ids and immutable values, so a
retried task converges.

- :mod:`~weightvault.lifecycle.bootstrap`: ``init``, buckets;
- :mod:`~weightvault.lifecycle.ingest`: put;
- :mod:`~weightvault.lifecycle.validate` and :mod:`~weightvault.lifecycle.evidence`:
  the format scan, GX checks and their stored reports;
- :mod:`~weightvault.lifecycle.promote` (with :mod:`~weightvault.lifecycle.claims`):
  promotion and delete; :mod:`~weightvault.lifecycle.quarantine`: quarantine, release;
- :mod:`~weightvault.lifecycle.rotation`: scheduled key rotation;
  :mod:`~weightvault.lifecycle.compromise`: marking a key compromised;
  :mod:`~weightvault.lifecycle.rekey`: the compromise response;
- :mod:`~weightvault.lifecycle.escrow`: escrow envelopes, share ceremonies, escrow decrypt;
- :mod:`~weightvault.lifecycle.export`: air-gapped bundles and offline verification;
- :mod:`~weightvault.lifecycle.rebuild`: the catalog rebuilt from the store;
- :mod:`~weightvault.lifecycle.witness`: a witness's round over the vault's log;
- :mod:`~weightvault.lifecycle.isolation` and :mod:`~weightvault.lifecycle.contain`: tier
  isolation, the contain playbook, its incident bundle and lifting it.
- :mod:`~weightvault.lifecycle.incidents` (with :mod:`~weightvault.lifecycle.detection`):
  detection rules over the signed log, incidents opened, listed and resolved.
"""
