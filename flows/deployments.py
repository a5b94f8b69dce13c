"""The served deployments. `weightvault up` runs this module in the background."""

from __future__ import annotations

from typing import Any

from flows.ingest import ingest
from flows.promote import promote
from flows.validate import validate


def deployments() -> list[Any]:
    """Every deployment with its schedule."""
    return [
        ingest.to_deployment(
            name="ingest",
            description="Ingest a model artifact with provenance; fill the form and run.",
            tags=["weightvault"],
        ),
        validate.to_deployment(
            name="validate",
            description="Run format, Great Expectations and provenance checks on an artifact.",
            tags=["weightvault"],
        ),
        promote.to_deployment(
            name="promote",
            description="Promote an artifact hot->warm or warm->cold: fill the form and run.",
            tags=["weightvault"],
        ),
    ]


def main() -> None:
    """Serve every deployment until interrupted."""
    from prefect import serve

    serve(*deployments(), print_starting_message=True)


if __name__ == "__main__":
    main()
