"""Prefect events from the vault's outcomes, sent by a background thread that never blocks.

Every outcome the vault records (and every refusal that could not be recorded) is
turned into one event of Prefect 3's schema and queued; a daemon thread posts
batches to ``POST {PREFECT_API_URL}/events``. A full queue drops the event and
counts it; a failed post is counted, never raised; at process exit the queue
gets a short flush so a command's last events are delivered. The names are a
contract (``docs/events.md``).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import queue
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from weightvault._json import canonical_json
from weightvault.config import other_variable

_NAMESPACE = uuid.UUID("5b1f5d0e-8f0c-4c55-9c7a-1f1c8b1e0a61")
_RENAMED = {"grant.accessed": "grant.used"}
_BATCH = 100
_SCALARS = (str, int, float, bool)

ApiUrlSource = Callable[[], "str | None"]
_url_sources: list[ApiUrlSource] = []


def set_api_url_source(source: ApiUrlSource | None) -> None:
    """Have emission ask ``source`` for the Prefect API URL (the tasks' adapters set it)."""
    _url_sources.clear()
    if source is not None:
        _url_sources.append(source)


def _profile_api_url() -> str | None:
    """``PREFECT_API_URL`` of the active Prefect profile (``profiles.toml``), if any."""
    path = other_variable("PREFECT_PROFILES_PATH")
    home = other_variable("PREFECT_HOME") or str(Path.home() / ".prefect")
    file = Path(path) if path else Path(home) / "profiles.toml"
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = other_variable("PREFECT_PROFILE") or doc.get("active")
    profiles = doc.get("profiles")
    if not isinstance(active, str) or not isinstance(profiles, dict):
        return None
    profile = profiles.get(active)
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return url if isinstance(url, str) and url else None


def prefect_api_url(configured: str | None = None) -> str | None:
    """Where events go: the ``[events]`` setting, the adapters' source, the environment, the
    active Prefect profile; None: nowhere."""
    if configured:
        return configured
    for source in _url_sources:
        with contextlib.suppress(Exception):
            url = source()
            if url:
                return url
    return other_variable("PREFECT_API_URL") or _profile_api_url()


def event_name(kind: str, outcome: str | None, *, integrity: bool) -> str:
    """The Prefect event name of an outcome of log kind ``kind`` (the contract)."""
    domain = kind.split(".", 1)[0]
    if outcome == "ok":
        return f"weightvault.{_RENAMED.get(kind, kind)}"
    if outcome == "refused":
        return f"weightvault.{domain}.denied"
    if integrity:
        return f"weightvault.{domain}.integrity_failed"
    return f"weightvault.{kind}.failed"


def _text(value: Any) -> str:
    return str(value)[:200]


def prefect_event(
    doc: Mapping[str, Any],
    *,
    index: int | None,
    vault: str,
    integrity: bool = False,
    training_run: str | None = None,
) -> dict[str, Any]:
    """The Prefect event (JSON) of one log event ``doc`` (:meth:`Event.to_dict`)."""
    kind = str(doc["kind"])
    outcome = doc.get("outcome")
    artifact, tier = doc.get("artifact_id"), doc.get("tier")
    details = doc.get("details") or {}
    resource = (
        {
            "prefect.resource.id": f"weightvault.artifact.{artifact}",
            "prefect.resource.name": artifact,
        }
        if artifact
        else {"prefect.resource.id": f"weightvault.vault.{vault}", "prefect.resource.name": vault}
    )
    if tier:
        resource["weightvault.tier"] = str(tier)
    related: list[dict[str, str]] = []
    name = (doc.get("principal") or {}).get("name")
    keyid = (doc.get("principal") or {}).get("keyid")
    if name or keyid:
        principal = {
            "prefect.resource.id": f"weightvault.principal.{name or 'unenrolled'}",
            "prefect.resource.role": "principal",
            "prefect.resource.name": str(name or "unenrolled"),
        }
        if keyid:
            principal["weightvault.keyid"] = _text(keyid)
        related.append(principal)
    if tier:
        related.append(
            {"prefect.resource.id": f"weightvault.tier.{tier}", "prefect.resource.role": "tier"}
        )
    client = doc.get("client") or {}
    if client.get("host"):
        related.append(
            {
                "prefect.resource.id": f"weightvault.client.{client['host']}",
                "prefect.resource.role": "client",
                "weightvault.process": _text(client.get("process", "")),
                "weightvault.pid": _text(client.get("pid", "")),
            }
        )
    if client.get("flow_run"):
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{client['flow_run']}",
                "prefect.resource.role": "flow-run",
            }
        )
    run = details.get("run_id") if isinstance(details.get("run_id"), str) else training_run
    if run:
        related.append(
            {
                "prefect.resource.id": f"weightvault.training-run.{_text(run)}",
                "prefect.resource.role": "training-run",
            }
        )
    for ref in doc.get("key_ids") or ():
        related.append(
            {"prefect.resource.id": f"weightvault.key.{ref}", "prefect.resource.role": "key"}
        )
    payload: dict[str, Any] = {
        "operation": kind,
        "log_index": index,
        "event_id": doc.get("id"),
        "op": doc.get("op"),
        "outcome": outcome,
        "reason": doc.get("reason"),
        "error": details.get("error"),
        "details": {
            k: (v[:200] if isinstance(v, str) else v)
            for k, v in details.items()
            if isinstance(v, _SCALARS) or v is None
        },
    }
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{doc.get('id')}|{doc.get('phase')}")),
        "occurred": doc["ts"],
        "event": event_name(
            kind, outcome if isinstance(outcome, str) else None, integrity=integrity
        ),
        "resource": resource,
        "related": related,
        "payload": payload,
    }


@dataclass
class EmitterStats:
    """What an emitter did: events sent, dropped (queue full), failed (the post failed)."""

    sent: int = 0
    dropped: int = 0
    failed: int = 0


class Emitter:
    """A bounded queue of events and the daemon thread that posts them to one Prefect API."""

    def __init__(self, api_url: str, *, queue_size: int = 1000, timeout: float = 2.0) -> None:
        self.url = api_url.rstrip("/") + "/events"
        self.stats = EmitterStats()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._busy = 0
        self._lock = threading.Lock()
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        )
        self._thread = threading.Thread(target=self._run, name="weightvault-events", daemon=True)
        self._thread.start()

    def submit(self, event: dict[str, Any]) -> bool:
        """Queue ``event``; False (and counted as dropped) when the queue is full."""
        try:
            with self._lock:
                self._queue.put_nowait(event)
                self._busy += 1
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if key := other_variable("PREFECT_API_KEY"):
            headers["Authorization"] = f"Bearer {key}"
        elif auth := other_variable("PREFECT_API_AUTH_STRING"):
            headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        return headers

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                response = self._http.request(
                    "POST", self.url, body=canonical_json(batch), headers=self._headers()
                )
                if response.status >= 300:
                    raise OSError(f"HTTP {response.status}")
                self.stats.sent += len(batch)
            except Exception:
                self.stats.failed += len(batch)
            finally:
                with self._lock:
                    self._busy -= len(batch)

    def pending(self) -> int:
        """Events queued or being posted."""
        with self._lock:
            return self._busy

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait at most ``timeout`` seconds for the queue to drain; whether it did."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.pending()


_emitters: dict[str, Emitter] = {}
_emitters_lock = threading.Lock()
_FLUSH_SECONDS = [2.0]


def emitter(api_url: str) -> Emitter:
    """The process' emitter for ``api_url`` (started on first use)."""
    with _emitters_lock:
        found = _emitters.get(api_url)
        if found is None:
            found = _emitters[api_url] = Emitter(api_url)
        return found


def emit(event: dict[str, Any], api_url: str | None) -> bool:
    """Queue a Prefect event for ``api_url`` (None: not sent); never raises, never blocks."""
    if not api_url:
        return False
    try:
        return emitter(api_url).submit(event)
    except Exception:
        return False


def flush_events(timeout: float | None = None) -> bool:
    """Give every emitter up to ``timeout`` seconds in all to deliver what it holds."""
    deadline = time.monotonic() + (_FLUSH_SECONDS[0] if timeout is None else timeout)
    done = True
    for found in list(_emitters.values()):
        done = found.flush(max(0.0, deadline - time.monotonic())) and done
    return done


def event_stats() -> EmitterStats:
    """The counts of every emitter of this process, added up."""
    total = EmitterStats()
    for found in list(_emitters.values()):
        total.sent += found.stats.sent
        total.dropped += found.stats.dropped
        total.failed += found.stats.failed
    return total


atexit.register(flush_events)
