"""The served dashboard in a real Chromium: the one-click demo, a live search with Stop, the
Models and Report pages, and a repair from start to verdict.

Serves the app with `compd dashboard` on a free port and a temporary database, drives Debian's
Chromium through Playwright (no browser download), and saves screenshots and the measured
timings (never asserted) under tests/dashboard/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import ViewportSize

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT: ViewportSize = {"width": 1400, "height": 2000}  # Streamlit scrolls inside: shoot tall


@dataclass
class Server:
    url: str
    db: Path
    launched: float  # perf_counter when `compd dashboard` was started
    answered: float  # perf_counter when its health endpoint first answered


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dashboard_command() -> list[str]:
    """The README's `compd dashboard`, run through this interpreter."""
    return [sys.executable, "-m", "compd_core", "dashboard"]


def _record(name: str, value: float) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[name] = round(value, 3)
    path.write_text(json.dumps(timings, indent=2) + "\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium "
                    "(apt-get install -y chromium; .ci/run installs it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    db = tmp_path_factory.mktemp("browser") / "results.sqlite"
    log = (ARTIFACTS / "server.log").open("w")
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    launched = time.perf_counter()
    process = subprocess.Popen(
        [*_dashboard_command(), "--port", str(port), "--db", str(db)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        answered = _wait_for_health(url, process)
        yield Server(url, db, launched, answered)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def _wait_for_health(url: str, process: subprocess.Popen, timeout: float = 90.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`compd dashboard` exited with {process.returncode}; "
                        f"see {ARTIFACTS}/server.log")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the dashboard did not answer within {timeout:.0f} s; see {ARTIFACTS}/server.log")


@pytest.fixture
def page(server: Server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def _loaded_images(page) -> int:
    """Streamlit images that the browser has actually decoded (not just placed)."""
    return page.locator('[data-testid="stImage"] img').evaluate_all(
        "images => images.filter(i => i.complete && i.naturalWidth > 0).length"
    )


def test_one_click_demo_ends_on_a_trigger(server: Server, page) -> None:
    opened = time.perf_counter()
    page.goto(server.url)
    button = page.get_by_role("button", name="Find a deviation now")
    button.wait_for(timeout=60_000)
    # A user's browser is already running: count the server's start plus the page's load.
    server_s, page_s = server.answered - server.launched, time.perf_counter() - opened
    _record("server_answers_s", server_s)
    _record("page_load_s", page_s)
    _record("start_page_usable_s", server_s + page_s)
    page.screenshot(path=str(ARTIFACTS / "01-start.png"))

    button.click()
    clicked = time.perf_counter()
    page.get_by_text(re.compile(r"Found \d+ deviations? in")).first.wait_for(timeout=180_000)
    _record("demo_click_to_trigger_s", time.perf_counter() - clicked)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for(timeout=30_000)
    chart.locator(".bars path").first.wait_for(state="attached", timeout=30_000)  # bars drawn
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 3", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "02-demo-trigger.png"))

    assert page.get_by_text("The original model still reads").count() == 1
    assert page.get_by_text("Original's margin").count() == 1  # strength beside the bars
    assert "original model" in chart.inner_text() and "compressed model" in chart.inner_text()
    assert _loaded_images(page) >= 3  # seed, trigger and their difference


def test_search_runs_live_and_stops(server: Server, page) -> None:
    page.goto(f"{server.url}/search")
    start = page.get_by_role("button", name="Start search")
    start.wait_for(timeout=60_000)
    # Large enough that it is still searching when Stop is pressed, on any machine.
    page.locator('input[aria-label="Number of seeds"]').fill("1000")
    budget = page.locator('input[aria-label="Query budget per seed"]')
    budget.fill("100000")
    budget.press("Tab")
    page.wait_for_timeout(500)
    start.click()

    # `.first`: while a fragment redraws, Streamlit briefly keeps the stale copy of an element
    stamp = page.get_by_text("Live · updated").first
    stamp.wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    page.reload()  # a reload is a new session: the URL brings it back to the running search
    stamp.wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    stamps, began = set(), time.perf_counter()
    while time.perf_counter() - began < 6.0:
        stamps.add(stamp.inner_text())
        page.wait_for_timeout(100)
    _record("live_panel_refreshes_per_s", (len(stamps) - 1) / (time.perf_counter() - began))
    page.screenshot(path=str(ARTIFACTS / "03-search-live.png"))
    # The chain strip is one element: seed, accepted steps and trigger change together.
    captions = page.locator("figure figcaption").all_inner_texts()
    assert captions[0] == "seed" and captions[-1].startswith("trigger:") and 3 <= len(captions) <= 10

    # Stop sits in a panel that redraws every second; on a loaded machine a click can land
    # while its button is being replaced, so (like a user) click again if nothing happened.
    outcome = page.get_by_text("The last search was stopped").first
    asked = time.perf_counter()
    for attempt in range(4):
        page.get_by_role("button", name="Stop").first.click()
        try:
            outcome.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise
    _record("stop_to_stopped_view_s", time.perf_counter() - asked)
    caption = page.get_by_text("stopped querying").first.inner_text()
    halted, saved = (float(v) for v in re.findall(r"([0-9.]+) s after", caption))
    _record("stop_to_last_query_s", halted)
    _record("stop_to_all_saved_s", saved)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "04-search-stopped.png"))

    from compd_core.store import Store

    with Store(server.db, create=False) as store:
        run = next(r for r in store.list_runs() if r.seed_count == 1000)
    assert run.status == "stopped"
    assert run.seeds_done >= 1  # what was searched before Stop is in the store
    if run.wall_seconds > 0:
        _record("dashboard_queries_per_s", run.queries / run.wall_seconds)

    page.get_by_role("link", name="Triggers").first.click()
    page.get_by_text("selected for repair").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "05-triggers.png"))


def test_models_and_report_pages_render(server: Server, page) -> None:
    page.goto(f"{server.url}/models")  # a deep link, as after a reload
    page.get_by_text("Compressed model").first.wait_for(timeout=120_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "06-models.png"))
    # The profile of the pruned pair: its search runs no boundary probes at every budget, so
    # the page is measured in seconds (the default pair's profile is in bench/PROFILE.md).
    choice = page.get_by_role("combobox", name="Sample pair")
    choice.click()
    page.get_by_role("option", name=re.compile(r"^lenet5-prune90:")).click()
    assert choice.input_value().startswith("lenet5-prune90:")
    # Its card: stored dense with its masks, the pruned file is larger than the original's.
    page.get_by_text("larger file").first.wait_for(timeout=120_000)
    page.locator('input[aria-label="Seed images"]').fill("10")
    queries = page.locator('input[aria-label="Queries per image and budget"]')
    queries.fill("500")
    queries.press("Tab")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Measure the profile").click()
    page.get_by_text("test digits").last.wait_for(timeout=240_000)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".bars path").first.wait_for(state="attached", timeout=30_000)
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "06b-profile.png"))
    assert "255" in chart.inner_text()
    # The profile ran as a background job; the form kept what was typed while it ran.
    assert page.locator('input[aria-label="Seed images"]').input_value() == "10"
    assert "share of 10 seeds" in chart.inner_text()
    page.goto(f"{server.url}/report")
    page.get_by_role("button", name="Download the report (HTML)").wait_for(timeout=120_000)
    page.wait_for_timeout(2500)
    page.screenshot(path=str(ARTIFACTS / "07-report.png"))
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Triggers" in nav and "app" not in nav.split()  # st.navigation, not a pages/ folder


def _metric(page, label: str) -> str:
    """The value shown by the Streamlit metric with this label."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_repair_in_the_browser_gives_its_verdict_and_the_numbers_the_api_gives(server: Server, page) -> None:
    """A repair started on the Repair page trains, then shows its verdict first and the
    held-out and test numbers that the Python API computes for the same run and settings."""
    from compd_core.campaign import CampaignSpec, run_campaign
    from compd_core.repair import RepairSettings, repair_run
    from compd_core.search.settings import SearchSettings
    from compd_core.store import Store

    with Store(server.db) as store:
        run_id = run_campaign(CampaignSpec("lenet5-prune90", "compd", seeds=12, rng_seed=0,
                                           settings=SearchSettings(max_queries=2000)), store).run_id
        found = store.get_run(run_id).found
    assert found >= 6

    def same_repair_through_the_api():
        with Store(server.db) as store:
            return repair_run(store, run_id, RepairSettings(epochs=2, mined_seeds=0, research=False),
                              register="never")

    # The API's repair of the same run runs beside the page's (each on one core of its own).
    api = ThreadPoolExecutor(1, thread_name_prefix="api-repair")
    expected = api.submit(same_repair_through_the_api)
    page.goto(f"{server.url}/repair")
    page.get_by_role("button", name="Start repair").wait_for(timeout=120_000)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=re.compile(run_id)).click()
    page.get_by_text(f"all {found} triggers of the run").first.wait_for(timeout=60_000)
    for label, value in (("Epochs", "2"), ("Training digits to mine", "0")):
        field = page.locator(f'input[aria-label="{label}"]')
        field.fill(value)
        field.press("Tab")
        page.wait_for_timeout(500)
    page.get_by_text("Re-search both pairs").click()
    page.wait_for_timeout(500)
    started = time.perf_counter()
    page.get_by_role("button", name="Start repair").click()
    page.get_by_text("Repairing").first.wait_for(timeout=60_000)
    # The live panel draws the loss and the repair curves as epochs finish.
    page.get_by_text(re.compile(r"^1 of 2 epochs")).first.wait_for(timeout=240_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "08-repair-live.png"))
    page.get_by_text("The last repair finished").wait_for(timeout=300_000)
    _record("dashboard_repair_s", time.perf_counter() - started)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "09-repair-verdict.png"))
    # The form was not drawn while the repair ran; it comes back with what was typed.
    assert page.locator('input[aria-label="Epochs"]').input_value() == "2"
    assert page.locator('input[aria-label="Training digits to mine"]').input_value() == "0"
    assert not page.get_by_role("checkbox", name="Re-search both pairs").is_checked()

    report = expected.result(timeout=300)
    api.shutdown()
    headings = {"better": "Better by every threshold", "unchanged": "Unchanged.",
                "worse": "This repair made things worse."}
    assert page.get_by_text(headings[report.verdict]).count() >= 1
    assert _metric(page, "Held-out triggers repaired") == f"{report.heldout_repaired_rate:.1%}"
    assert _metric(page, "Test disagreements after") == f"{report.disagreements_after:,}"
    if report.heldout_unrepaired_margin is not None:  # where the original stood at the misses
        assert page.get_by_text(f"is {report.heldout_unrepaired_margin:.3f} (median").count() == 1
    assert page.get_by_role("button", name="Register the repaired pair").count() == (
        report.verdict != "unchanged")
