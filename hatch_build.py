"""Wheel build hook: ship config/ as weightvault/_defaults, in real wheels only.

An editable install (``make setup``) reads the checkout's ``config/`` directly,
so it gets no copy that could go stale.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class DefaultsHook(BuildHookInterface):  # type: ignore[misc]
    """Add the packaged defaults (weightvault.config.packaged_config_dir) to the wheel."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Force-include config/ when building a standard (non-editable) wheel."""
        if version == "standard":
            build_data["force_include"]["config"] = "weightvault/_defaults"
