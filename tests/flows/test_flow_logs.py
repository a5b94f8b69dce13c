"""The vault's own log lines reach each flow run's logs in Prefect, redacted."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from flows.ingest import ingest
from tests.support.payloads import weights
from weightvault.config import Settings
from weightvault.logs import route_to_handlers


async def _logs(flow_run_id: object) -> list[tuple[str, str]]:
    async with get_client() as client:
        found = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [(log.name, log.message) for log in found]


def test_flow_run_logs_show_redacted_vault_lines(
    vault_settings: Settings, prefect_api: None, tmp_path: Path
) -> None:
    # A flow-run process has the vault's lines routed to its run log, as JSON at INFO
    # (tasks/__init__.py); an in-process CLI test earlier in this process may have
    # configured them otherwise.
    route_to_handlers([], "INFO")
    src = tmp_path / "w.bin"
    src.write_bytes(weights(4096))
    state = ingest(
        path=str(src),
        name="logged",
        allow_incomplete=True,
        model_repo=str(tmp_path),
        return_state=True,
    )
    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    secret = os.environ["WEIGHTVAULT_S3_SECRET_KEY"]
    logs: list[tuple[str, str]] = []
    for _ in range(60):  # the API log worker flushes in the background
        logs = asyncio.run(_logs(run_id))
        if any(name.startswith("weightvault") and "artifact.ingested" in m for name, m in logs):
            break
        asyncio.run(asyncio.sleep(0.5))
    vault_lines = [json.loads(msg) for name, msg in logs if name.startswith("weightvault")]
    assert any(line["event"] == "artifact.ingested" for line in vault_lines), logs
    assert all(secret not in msg for _, msg in logs)


def test_a_refusal_leaves_no_engine_traceback_in_the_run_log() -> None:
    """A deployment's flow-run process re-raises a Failed run's exception and Prefect's
    engine logs it with its traceback; for a refusal (already one warning) that record
    is dropped, for anything else it stays."""
    import logging
    import uuid

    from prefect.logging.loggers import flow_run_logger

    import flows._operator  # noqa: F401 - installs the filter, as loading any flow does
    from weightvault.errors import PolicyError

    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False  # this test's records go nowhere else
    try:
        for exc in (PolicyError("promotion of x refused: two_person"), RuntimeError("bug")):
            try:
                raise exc
            except Exception:
                # exactly as prefect.flow_engine.run_flow logs it, through the run's logger
                flow_run_logger(flow_run_id=uuid.uuid4()).error(
                    "Engine execution exited with unexpected exception", exc_info=True
                )
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)
    assert [r.exc_info[1].__class__.__name__ for r in seen if r.exc_info] == ["RuntimeError"]
