"""What every flow shows an operator in the Prefect UI: forms, run names, refusals.

* :func:`field` gives a flow parameter a title and a description for the run form
  (Prefect titles a parameter by its name otherwise, and reads no model docs).
* :func:`run_name` names a run from its parameters (``promote-<id>-to-cold``).
* :func:`refusals_fail` (on every flow body) turns a refusal (any :class:`VaultError`) into a failed
  flow state with its message: one warning line with the reason in the run log,
  no traceback, nothing persisted (the API gets no result, so no "result" artifact).
* :data:`QUIET_REFUSALS` keeps the flow-run subprocess of a deployment from adding a
  traceback of that refusal to the run log: Prefect's engine re-raises a Failed
  run's exception there and logs it as "Engine execution exited with unexpected
  exception"; for a refusal that is neither unexpected nor worth a traceback.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast, get_type_hints

from prefect import get_run_logger
from prefect.states import Failed
from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from weightvault.errors import InvalidInputError, VaultError

P = ParamSpec("P")
R = TypeVar("R")

#: how much of one parameter value a run name shows
NAME_VALUE_CHARS = 40


#: what Prefect's engine logs when a run's exception leaves it (the deployment path)
ENGINE_EXIT_MESSAGE = "Engine execution exited with unexpected exception"


class _QuietRefusals(logging.Filter):
    """Drops the engine's exit traceback when the exception is a refusal (a VaultError).

    The run already logged the refusal as one warning and its state carries the
    message; any other exception keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, VaultError) and record.getMessage() == ENGINE_EXIT_MESSAGE)


QUIET_REFUSALS = _QuietRefusals()
logging.getLogger("prefect.flow_runs").addFilter(QUIET_REFUSALS)


def field(title: str, description: str, default: Any = PydanticUndefined, **extra: Any) -> Any:
    """A flow parameter's form field: its label, its help text, its plain default."""
    return Field(default, description=description, json_schema_extra={"title": title}, **extra)


def run_name(template: str, **fallbacks: str) -> Callable[[], str]:
    """A run-name callable: ``template`` formatted with the run's parameters and ``time``.

    An empty parameter shows as its fallback (or ``-``); long values are cut.
    """

    def name() -> str:
        from prefect.runtime import flow_run

        values: dict[str, str] = {}
        for key, value in dict(flow_run.parameters).items():
            text = str(value)[:NAME_VALUE_CHARS] if value not in (None, "") else ""
            values[key] = text or fallbacks.get(key, "-")
        values["time"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return template.format_map(values)

    return name


def refusals_fail(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a flow body: a VaultError ends the run Failed with its message, quietly.

    It also gives the body its :func:`field` defaults: Prefect passes a form field's
    ``FieldInfo`` through for a parameter the run was not given.
    """
    signature = inspect.signature(fn, eval_str=True)

    @functools.wraps(fn)
    def body(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            bound = signature.bind_partial(*args, **kwargs)
            for name, param in signature.parameters.items():
                value = bound.arguments.get(name, param.default)
                if isinstance(value, FieldInfo):
                    if value.is_required():
                        raise InvalidInputError(f"missing parameter: {name}")
                    value = value.get_default(call_default_factory=True)
                bound.arguments[name] = value
            return fn(*bound.args, **bound.kwargs)
        except VaultError as exc:
            get_run_logger().warning("%s", exc.message)
            # Prefect resolves a returned state; the API gets the message, no data.
            return cast(R, Failed(message=exc.message, data=exc))

    # Prefect builds the form and validates parameters from the signature, whose string
    # annotations it would resolve in this module's namespace: hand it them resolved.
    body.__signature__ = signature  # type: ignore[attr-defined]
    body.__annotations__ = get_type_hints(fn, include_extras=True)
    return body
