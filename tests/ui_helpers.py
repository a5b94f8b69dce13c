"""Helpers for tests that drive the served deployments and the Prefect UI.

The services are the real ones `weightvault up` starts (`flows.services.up`):
`prefect server start` (API and UI on one port) and `python -m flows.deployments`
serving the deployments. The browser is Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.services import down, up
from weightvault.config import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium floods the closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


# --- the Prefect REST API, as the UI itself calls it -------------------------------------


def api(api_url: str, path: str, body: Any = None, *, method: str | None = None) -> Any:
    """One JSON call to the Prefect API; None on 404."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the test
        f"{api_url}{path}",
        data=data,
        method=method or ("GET" if body is None else "POST"),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def wait_for_deployment(api_url: str, name: str, *, timeout: float) -> dict[str, Any]:
    """The deployment ``flow/deployment`` once the runner has registered it."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            found = api(api_url, f"/deployments/name/{name}")
            if found:
                return dict(found)
        if time.monotonic() > deadline:
            raise TimeoutError(f"deployment {name} was not registered within {timeout}s")
        time.sleep(0.5)


def flow_runs_of(api_url: str, deployment_id: str) -> list[dict[str, Any]]:
    """Every flow run created from the deployment."""
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    return list(api(api_url, "/flow_runs/filter", body))


def wait_for_flow_run(api_url: str, flow_run_id: str, *, timeout: float) -> dict[str, Any]:
    """The flow run once it reached a terminal state."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        run = api(api_url, f"/flow_runs/{flow_run_id}")
        if run and run.get("state_type") in TERMINAL_STATES:
            return run
        time.sleep(1)
    state = run.get("state_type") if run else "missing"
    raise TimeoutError(f"flow run {flow_run_id} still {state} after {timeout}s")


# --- the services ----------------------------------------------------------------------


def service_logs(settings: Settings, *, lines: int = 60) -> str:
    """The tails of the server and runner logs, for failure messages."""
    parts = []
    for name in ("serve.log", "server.log"):
        path = settings.home / "prefect" / name
        with contextlib.suppress(FileNotFoundError):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {name} ---\n" + "\n".join(tail))
    return "\n".join(parts)


def _kill_orphans(settings: Settings) -> None:
    """Stop services this process started for ``settings`` but `up` never recorded.

    `up` writes its state only once everything started; if it fails half-way the
    server is still our child. Only our own children with this vault's
    PREFECT_HOME are stopped, by process group id.
    """
    import psutil

    prefect_home = str(settings.home / "prefect")
    for child in psutil.Process().children(recursive=False):
        with contextlib.suppress(psutil.Error):
            if child.environ().get("PREFECT_HOME") != prefect_home:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except psutil.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)


@contextlib.contextmanager
def served(settings: Settings, *, timeout: float = 240.0) -> Iterator[dict[str, Any]]:
    """`weightvault up` for ``settings`` until the promote deployment is served; then `down`.

    The runner inherits this process' environment, so the WEIGHTVAULT_* variables
    set by the fixtures reach the flow-run subprocesses.
    """
    try:
        state = up(settings, timeout=timeout)
        state["deployment"] = wait_for_deployment(
            state["api_url"], "promote/promote", timeout=timeout
        )
        yield state
    finally:
        down(settings)
        _kill_orphans(settings)


# --- the browser -----------------------------------------------------------------------


@contextlib.contextmanager
def chromium_page(shots: Path, *, timeout_ms: float = 60_000) -> Iterator[Page]:
    """A headless Chromium page; on failure a screenshot and the DOM are kept in ``shots``."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=120_000
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(timeout_ms)
            context.set_default_navigation_timeout(120_000)
            page = context.new_page()
            journal = _journal(page)
            try:
                yield page
            except BaseException:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(shots / "failure.png"), full_page=True)
                    (shots / "failure.html").write_text(page.content())
                raise
            finally:
                (shots / "browser.log").write_text("\n".join(journal) + "\n")
        finally:
            browser.close()


def _journal(page: Page) -> list[str]:
    """Console errors, page errors and failed API calls of ``page``, kept for failures."""
    journal: list[str] = []

    def on_response(response: Any) -> None:
        if response.status >= 400 and "/api/" in response.url:
            body = ""
            with contextlib.suppress(Exception):
                body = response.text()[:2000]
            request = response.request
            journal.append(
                f"{response.status} {request.method} {response.url}\n"
                f"  sent: {(request.post_data or '')[:2000]}\n  got: {body}"
            )

    page.on("response", on_response)
    page.on("console", lambda m: journal.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: journal.append(f"pageerror: {e}"))
    page.on(
        "requestfailed",
        lambda r: journal.append(f"failed {r.method} {r.url}: {r.failure}"),
    )
    return journal


def form_field(page: Page, label: str) -> Locator:
    """The schema-form property titled ``label`` (its own block, not the enclosing object).

    The Prefect form's <label for=...> points at no control, so fields are found
    by their title span and its nearest `schema-form-property` ancestor.
    """
    return page.locator(
        "xpath=//span[contains(concat(' ', normalize-space(@class), ' '),"
        f" ' schema-form-property__label ') and normalize-space()='{label}']"
        "/ancestor::div[contains(concat(' ', normalize-space(@class), ' '),"
        " ' schema-form-property ')][1]"
    )


def fill_text(page: Page, label: str, value: str) -> None:
    """Type into a string property (rendered as a textarea)."""
    box = form_field(page, label).locator("textarea")
    box.fill(value)
    assert box.input_value() == value


def choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in an enum property (a p-select).

    A synthetic mouse click on the select button does not open its pop-over in
    headless Chromium; the keyboard does (focus, ArrowDown), then the option is
    clicked in the listbox.
    """
    button = form_field(page, label).locator("button.p-select-button__control")
    listbox = page.get_by_role("listbox")
    for _ in range(5):
        button.focus()
        page.keyboard.press("ArrowDown")
        with contextlib.suppress(Exception):
            listbox.first.wait_for(state="visible", timeout=3_000)
            break
    listbox.first.get_by_role("option", name=option, exact=True).click()
    deadline = time.monotonic() + 10
    while button.inner_text().strip() != option:
        if time.monotonic() > deadline:
            raise AssertionError(f"{label} shows {button.inner_text()!r}, not {option!r}")
        time.sleep(0.2)


def open_custom_run(page: Page, ui_url: str, deployment: str) -> None:
    """Deployments -> ``deployment`` -> Run -> Custom run."""
    page.goto(f"{ui_url}/deployments", wait_until="networkidle")
    page.get_by_role("link", name=deployment, exact=True).first.click()
    page.wait_for_url(re.compile(r"/deployments/deployment/[^/?]+"))
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    page.wait_for_url(re.compile(r"/deployments/deployment/[^/]+/run"))
    page.get_by_role("button", name="Submit", exact=True).wait_for(state="visible")


def submit_run(
    page: Page, api_url: str, deployment_id: str, *, attempts: int = 3, timeout: float = 90.0
) -> dict[str, Any]:
    """Click Submit on the run form; the flow run the UI created (as the API returned it).

    Submit posts /ui/schemas/validate, then /deployments/{id}/create_flow_run. A
    4xx (bad parameters) fails at once. A 5xx or a network error (the UI then
    shows "Oops. Something went wrong.") is an infrastructure hiccup on this
    loaded machine: the form is still filled, so Submit is pressed again, unless
    the API shows the run was created after all.
    """
    seen: list[Any] = []
    failures: list[str] = []

    def on_response(response: Any) -> None:
        if "/api/" not in response.url or response.request.method != "POST":
            return
        if response.url.endswith("/create_flow_run"):
            seen.append(response)
        elif response.status >= 500:
            failures.append(f"{response.status} {response.url}")

    def on_failed(request: Any) -> None:
        if "/api/" in request.url:
            failures.append(f"{request.method} {request.url}: {request.failure}")

    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    try:
        for attempt in range(1, attempts + 1):
            seen.clear()
            failures.clear()
            page.get_by_role("button", name="Submit", exact=True).click()
            deadline = time.monotonic() + timeout
            while not seen and not failures and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            if seen:
                response = seen[0]
                if response.status == 201:
                    return dict(response.json())
                if response.status < 500:
                    raise AssertionError(
                        f"create_flow_run refused: {response.status} {response.text()}"
                    )
                failures.append(f"{response.status} {response.url}")
            existing = flow_runs_of(api_url, deployment_id)
            if existing:
                return existing[0]
            if attempt < attempts:
                page.wait_for_timeout(2_000)
        raise AssertionError(
            f"Submit did not create a flow run in {attempts} attempts: {failures or 'timeout'}"
        )
    finally:
        page.remove_listener("response", on_response)
        page.remove_listener("requestfailed", on_failed)
