"""The ``weightvault`` command line: ``main`` and what plug-in commands share.

Commands that need Prefect are plugged in through the ``weightvault.commands``
entry point group; a plug-in's ``register(sub, common)`` uses :func:`emit` and
:func:`settings_for`.
"""

from weightvault.cli._app import main
from weightvault.cli._common import emit, open_vault, settings_for

__all__ = ["emit", "main", "open_vault", "settings_for"]
