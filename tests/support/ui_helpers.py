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
from tests.support.services import service_timeout
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


#: how often a 503 answer is retried, and the first pause between tries (doubling)
API_503_RETRIES = 5
API_503_BACKOFF_S = 0.5


def api(api_url: str, path: str, body: Any = None, *, method: str | None = None) -> Any:
    """One JSON call to the Prefect API; None on 404.

    A 503 is retried a bounded number of times, as Prefect's own client does: the
    server answers 503 for a retryable database error (its SQLite database locked by
    the server's services and the runner on this loaded machine); the request's
    transaction was rolled back, so sending it again is safe.
    """
    data = None if body is None else json.dumps(body).encode()
    pause = API_503_BACKOFF_S
    for attempt in range(API_503_RETRIES + 1):
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
            if exc.code != 503 or attempt == API_503_RETRIES:
                raise
        time.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")  # the loop returns or raises


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
    workers = sorted(p.name for p in (settings.home / "prefect").glob("worker-*.log"))
    for name in ("serve.log", "server.log", "deploy.log", *workers):
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
def served(settings: Settings, *, timeout: float | None = None) -> Iterator[dict[str, Any]]:
    """`weightvault up` for ``settings`` until the promote deployment is served; then `down`.

    Each service may take ``timeout`` seconds (default: the tests' service
    timeout, WEIGHTVAULT_TEST_SERVICE_TIMEOUT) to become ready. The runner
    inherits this process' environment, so the WEIGHTVAULT_* variables set by the
    fixtures reach the flow-run subprocesses.
    """
    timeout = timeout or service_timeout()
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
#
# Every step waits for the state it needs through Playwright's auto-waiting locators
# and `expect` (which retries until its deadline); nothing reads the page back
# once and nothing sleeps for a fixed time. The Prefect UI is a Vue app that can
# re-render a form after a field was filled (when the deployment or its schema
# arrives late), dropping the input: fields are re-filled until they hold.

UI_TIMEOUT_MS = 60_000
"""How long any one UI state may take to appear on a loaded machine."""
SETTLE_MS = 5_000
"""How long a filled field may take to show its value before it is filled again."""


@contextlib.contextmanager
def chromium_page(shots: Path, *, timeout_ms: float = UI_TIMEOUT_MS) -> Iterator[Page]:
    """A headless Chromium page.

    If the block fails, a screenshot, the DOM, the console log (every
    ``console`` message) and the network journal are saved in ``shots`` and
    their paths are added to the failure's message.
    """
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
            console, journal = _journal(page)
            try:
                yield page
            except BaseException as exc:
                exc.add_note(_save_failure(page, shots, console, journal))
                raise
            finally:
                (shots / "browser.log").write_text("\n".join(journal) + "\n")
        finally:
            browser.close()


def _save_failure(page: Page, shots: Path, console: list[str], journal: list[str]) -> str:
    """Save what the page showed and said; the note naming the files, for the failure."""
    lines = ["browser failure artifacts:"]
    screenshot = shots / "failure.png"
    try:
        page.screenshot(path=str(screenshot), full_page=True, timeout=30_000)
        lines.append(f"  screenshot:  {screenshot}")
    except Exception as exc:  # the page may be gone: still name the logs
        lines.append(f"  screenshot:  not saved ({type(exc).__name__}: {exc})")
    console_log = shots / "console.log"
    console_log.write_text("\n".join(console) + "\n")
    lines.append(f"  console log: {console_log} ({len(console)} messages)")
    with contextlib.suppress(Exception):
        dom = shots / "failure.html"
        dom.write_text(page.content())
        lines.append(f"  DOM:         {dom}")
    network = shots / "browser.log"
    network.write_text("\n".join(journal) + "\n")
    lines.append(f"  network log: {network}")
    return "\n".join(lines)


def _journal(page: Page) -> tuple[list[str], list[str]]:
    """Collect ``page``'s console messages, and a journal of those, page errors and
    failed API calls, for failures."""
    console: list[str] = []
    journal: list[str] = []

    def on_console(message: Any) -> None:
        line = f"console.{message.type}: {message.text}"
        with contextlib.suppress(Exception):
            where = message.location
            if where.get("url"):
                line += f"  ({where['url']}:{where.get('lineNumber', 0)})"
        console.append(line)
        journal.append(line)

    def on_page_error(error: Any) -> None:
        console.append(f"pageerror: {error}")
        journal.append(f"pageerror: {error}")

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

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("response", on_response)
    page.on(
        "requestfailed",
        lambda r: journal.append(f"failed {r.method} {r.url}: {r.failure}"),
    )
    return console, journal


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


def text_box(page: Page, label: str) -> Locator:
    """The textarea of the string property ``label``."""
    return form_field(page, label).locator("textarea")


def select_button(page: Page, label: str) -> Locator:
    """The button of the enum property ``label`` (a p-select); its text is the choice."""
    return form_field(page, label).locator("button.p-select-button__control")


def _shows(option: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(option)}\s*$")


def fill_text(page: Page, label: str, value: str, *, attempts: int = 4) -> None:
    """Type into a string property (a textarea) until the field holds ``value``.

    `fill` waits for the box to be visible, enabled and editable; `expect`
    then waits up to SETTLE_MS for the value to show. A re-render that dropped
    the input is answered by filling again.
    """
    from playwright.sync_api import expect

    box = text_box(page, label)
    for attempt in range(1, attempts + 1):
        box.fill(value)
        try:
            expect(box).to_have_value(value, timeout=SETTLE_MS)
        except AssertionError as exc:
            if attempt == attempts:
                raise AssertionError(
                    f"{label!r} did not keep {value!r} after {attempts} fills: {exc}"
                ) from exc
        else:
            return


def choose(page: Page, label: str, option: str, *, attempts: int = 5) -> None:
    """Pick ``option`` in an enum property (a p-select) until the select shows it.

    A synthetic mouse click on the select button does not open its pop-over in
    headless Chromium; the keyboard does (focus, ArrowDown), then the option is
    clicked in the listbox. Each step waits for the state it needs.
    """
    from playwright.sync_api import expect

    button = select_button(page, label)
    expect(button).to_be_enabled(timeout=UI_TIMEOUT_MS)
    choice = page.get_by_role("listbox").first.get_by_role("option", name=option, exact=True)
    for attempt in range(1, attempts + 1):
        try:
            if not choice.is_visible():
                button.focus()
                page.keyboard.press("ArrowDown")
            expect(choice).to_be_visible(timeout=SETTLE_MS)
            choice.click()
            expect(button).to_have_text(_shows(option), timeout=SETTLE_MS)
        except AssertionError as exc:
            if attempt == attempts:
                raise AssertionError(
                    f"{label!r} does not show {option!r} after {attempts} attempts: {exc}"
                ) from exc
        else:
            return


def fill_form(
    page: Page,
    *,
    texts: dict[str, str],
    choices: dict[str, str] | None = None,
    rounds: int = 3,
) -> None:
    """Fill the run form, then check that every field still holds its value.

    A field can be dropped by a re-render triggered by a later field; then the
    whole form is filled again.
    """
    from playwright.sync_api import expect

    choices = choices or {}
    for round_ in range(1, rounds + 1):
        for label, option in choices.items():
            choose(page, label, option)
        for label, value in texts.items():
            fill_text(page, label, value)
        try:
            for label, value in texts.items():
                expect(text_box(page, label)).to_have_value(value, timeout=SETTLE_MS)
            for label, option in choices.items():
                expect(select_button(page, label)).to_have_text(_shows(option), timeout=SETTLE_MS)
        except AssertionError:
            if round_ == rounds:
                raise
        else:
            return


def open_custom_run(page: Page, ui_url: str, deployment: str, *, attempts: int = 3) -> None:
    """Deployments -> ``deployment`` -> Run -> Custom run; returns once the form is editable."""
    from playwright.sync_api import expect

    page.goto(f"{ui_url}/deployments")
    link = page.get_by_role("link", name=deployment, exact=True).first
    expect(link).to_be_visible(timeout=UI_TIMEOUT_MS)
    link.click()
    expect(page).to_have_url(re.compile(r"/deployments/deployment/[^/?]+"), timeout=UI_TIMEOUT_MS)
    run = page.get_by_role("button", name="Run", exact=True)
    custom = page.get_by_text("Custom run", exact=True)
    for attempt in range(1, attempts + 1):
        expect(run).to_be_enabled(timeout=UI_TIMEOUT_MS)
        run.click()
        try:
            expect(custom).to_be_visible(timeout=SETTLE_MS)
        except AssertionError:  # the menu did not open (clicked while the page hydrated)
            if attempt == attempts:
                raise
        else:
            break
    custom.click()
    expect(page).to_have_url(
        re.compile(r"/deployments/deployment/[^/]+/run"), timeout=UI_TIMEOUT_MS
    )
    expect(page.get_by_role("button", name="Submit", exact=True)).to_be_enabled(
        timeout=UI_TIMEOUT_MS
    )
    # The form is rendered from the deployment's schema once that has loaded.
    expect(page.locator(".schema-form-property textarea").first).to_be_editable(
        timeout=UI_TIMEOUT_MS
    )


def submit_run(
    page: Page, api_url: str, deployment_id: str, *, attempts: int = 3, timeout: float = 90.0
) -> dict[str, Any]:
    """Click Submit on the run form; the flow run the UI created (as the API returned it).

    Submit posts /ui/schemas/validate, then /deployments/{id}/create_flow_run; this
    waits for the create_flow_run response (or the first 5xx of an API POST). A
    4xx (bad parameters) fails at once. A 5xx or no answer (the UI then shows
    "Oops. Something went wrong.") is an infrastructure hiccup on this loaded
    machine: the form is still filled, so Submit is pressed again, unless the API
    shows the run was created after all.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    def answer(response: Any) -> bool:
        if "/api/" not in response.url or response.request.method != "POST":
            return False
        return bool(response.url.endswith("/create_flow_run") or response.status >= 500)

    submit = page.get_by_role("button", name="Submit", exact=True)
    failures: list[str] = []
    for attempt in range(1, attempts + 1):
        expect(submit).to_be_enabled(timeout=UI_TIMEOUT_MS)
        try:
            with page.expect_response(answer, timeout=timeout * 1000) as info:
                submit.click()
            response = info.value
        except PlaywrightTimeoutError:
            failures.append(f"attempt {attempt}: no create_flow_run answer in {timeout:.0f}s")
        else:
            if response.url.endswith("/create_flow_run") and response.status == 201:
                return dict(response.json())
            if response.status < 500:
                raise AssertionError(
                    f"create_flow_run refused: {response.status} {response.text()}"
                )
            failures.append(f"attempt {attempt}: {response.status} {response.url}")
        existing = flow_runs_of(api_url, deployment_id)
        if existing:
            return existing[0]
    raise AssertionError(f"Submit did not create a flow run in {attempts} attempts: {failures}")
