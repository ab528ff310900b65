"""The web console in a real browser: headless Chromium from Debian, driven by Playwright,
against a real emulator process. It watches an export climb to COMPLETED, moves the clock,
adds a 429 fault and sees the next request marked, opens a preview, starts an export, and
shows nothing but the prompt without the control token. Screenshots of the main views go to
test-artifacts/console/ (git ignores it)."""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fullstory_emulator.auth import DEMO_KEY, key_id, label_of
from tests.helpers import ROOT, parse, start, stop

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is part of the test extras: pip install -e '.[test]'"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)  # the console polls once a second; leave room on a busy CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root, in CI
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",  # the machine has no network: no update or sync noise
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = ROOT / "test-artifacts" / "console"
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TOKEN = "console-test-token"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run "
    "installs it)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base, _ = start(
        tmp_path_factory.mktemp("console"),
        "--export-duration",
        "5",
        "--export-duration-per-million",
        "0",
        "--population",
        "60",
        "--rate-limit",
        "off",
    )
    yield base
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base, _ = start(
        tmp_path_factory.mktemp("locked"), "--control-token", TOKEN, "--population", "60"
    )
    yield base
    process.terminate()
    process.wait(timeout=10)


class Tenant:
    """An API key and its tenant, for one test: each test has its own."""

    def __init__(self, base: str, name: str) -> None:
        self.key = f"na1.console-{name}-key"
        self.id = key_id(self.key)
        self.api = httpx.Client(
            base_url=base, headers={"Authorization": f"Basic {self.key}"}, timeout=10
        )

    def export(self, **body: Any) -> str:
        payload = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"} | body
        response = self.api.post("/segments/v1/exports", json=payload)
        assert response.status_code == 200, response.text
        return str(response.json()["operationId"])

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.api.request(method, f"/__emulator/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def file(self, operation_id: str) -> str:
        op = self.api.get(f"/operations/v1/{operation_id}").json()
        export_id = op["results"]["searchExportId"]
        location = self.api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
        return gzip.decompress(httpx.get(location).content).decode()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab at 1280x800 that fails the test on any script error."""
    context = browser.new_context(viewport=WIDE, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors


def shot(tab: Any, name: str, *, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=full_page)
    return path


def open_console(tab: Any, base: str, tenant: Tenant | None = None, view: str = "") -> None:
    tab.goto(f"{base}/")  # a browser at / is sent to the console
    assert tab.url == f"{base}/__emulator/ui"
    expect(tab.locator("#app")).to_be_visible()
    if tenant is not None:
        tab.select_option("#tenant", tenant.id)
    if view:
        tab.click(f'nav a[data-view="{view}"]')
        expect(tab.locator(f"#view-{view}")).to_be_visible()


def name_of(tenant: Tenant) -> str:
    """How the console names a tenant: the key's region and first characters, and the start of
    the tenant's id."""
    return f"{label_of(tenant.key)} · {tenant.id[:6]}"


def header_boxes(tab: Any) -> list[tuple[float, float]]:
    return [
        (b["x"], b["width"])
        for b in tab.eval_on_selector_all(
            ".ops thead th", "cells => cells.map(c => c.getBoundingClientRect().toJSON())"
        )
    ]


def test_an_export_climbs_to_completed_and_downloads(page: Any, emulator: str) -> None:
    tenant = Tenant(emulator, "climb")
    done = tenant.export(segmentId="rageClicks", format="FORMAT_JSON")
    tenant.control("POST", f"operations/{done}/complete")
    failed = tenant.export(segmentId="LegacyFunnel")
    tenant.control("POST", f"operations/{failed}/fail", {"errorDetails": "warehouse unavailable"})
    op_id = tenant.export()
    open_console(page, emulator, tenant)
    row = page.locator(f'tr[data-key="{tenant.id}/{op_id}"]')
    expect(row).to_be_visible()
    columns = header_boxes(page)
    seen: list[int] = []
    pictured = False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pct, state = row.evaluate(
            "row => [Number(row.querySelector('[role=progressbar]').getAttribute('aria-valuenow')),"
            " row.querySelector('.op-state').textContent]"
        )
        if not seen or seen[-1] != pct:
            seen.append(pct)
        if 30 <= pct < 100 and not pictured:
            shot(page, "operations")
            pictured = True
        if state == "COMPLETED":
            break
        time.sleep(0.1)
    assert row.locator(".op-state").inner_text() == "COMPLETED"
    assert seen == sorted(seen) and seen[-1] == 100, seen
    assert len([p for p in seen if 0 < p < 100]) >= 2, seen  # watched it climb
    assert header_boxes(page) == columns  # rows arriving and changing move no column
    expect(page.locator(f'tr[data-key="{tenant.id}/{failed}"] .op-error')).to_have_text(
        "warehouse unavailable"
    )
    api = tenant.api.get(f"/operations/v1/{op_id}").json()
    assert row.locator("time").nth(1).get_attribute("datetime") == api["finishedAt"]
    assert row.locator(".pct").inner_text() == "100%"
    shot(page, "operations-completed")

    with page.expect_download() as info:
        row.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv.gz")
    assert gzip.decompress(Path(download.path()).read_bytes()).decode() == tenant.file(op_id)


def test_advance_set_and_freeze_the_clock_from_the_page(page: Any, emulator: str) -> None:
    tenant = Tenant(emulator, "clock")
    tenant.api.get("/segments/v1")  # the tenant is seen
    open_console(page, emulator, tenant)
    page.get_by_role("button", name="Freeze").click()
    expect(page.locator("#freeze")).to_have_attribute("aria-pressed", "true")
    frozen = tenant.control("GET", "clock")
    assert frozen["frozen"] is True
    at = parse(frozen["now"])
    expect(page.locator("#clock-now")).to_have_attribute("datetime", frozen["now"])

    page.get_by_role("button", name="+1 h").click()
    expect(page.locator("#clock-now")).not_to_have_attribute("datetime", frozen["now"])
    assert parse(tenant.control("GET", "clock")["now"]) == at + timedelta(hours=1)
    page.get_by_role("button", name="+1 day").click()
    page.get_by_role("button", name="+1 min").click()
    expect(page.locator("#status")).to_have_text("Clock advanced by 1 min")
    assert parse(tenant.control("GET", "clock")["now"]) == at + timedelta(
        days=1, hours=1, minutes=1
    )

    page.fill("#clock-set-value", "2030-01-02T03:04:05")
    page.get_by_role("button", name="Set", exact=True).click()
    expect(page.locator("#clock-now")).to_have_text("2030-01-02 03:04:05 UTC")
    assert tenant.control("GET", "clock") == {"now": "2030-01-02T03:04:05.000000Z", "frozen": True}
    page.get_by_role("button", name="Unfreeze").click()
    expect(page.locator("#clock-state")).to_have_text("running")


def test_a_429_fault_from_the_page_marks_the_next_request(page: Any, emulator: str) -> None:
    tenant = Tenant(emulator, "fault")
    tenant.api.get("/segments/v1")
    open_console(page, emulator, tenant, "steering")
    form = page.locator("#fault-form")
    form.get_by_label("Path (glob)").fill("/operations/v1")
    form.get_by_label("Status").fill("429")
    form.get_by_label("Retry-After (s)").fill("7")
    form.get_by_label("Times").fill("1")
    top = page.locator("#app").evaluate("app => app.offsetTop")
    form.get_by_role("button", name="Add fault").click()
    expect(page.locator("#faults-body tr")).to_have_count(1)
    expect(page.locator("#status")).to_have_text("Fault rule added")
    assert page.locator("#app").evaluate("app => app.offsetTop") == top  # a message moves nothing
    expect(page.locator("#faults-body")).to_contain_text("status 429 (Retry-After 7)")
    rules = tenant.control("GET", "faults")["faults"]
    assert [(r["path"], r["status"], r["retryAfter"], r["remaining"]) for r in rules] == [
        ("/operations/v1", 429, 7, 1)
    ]
    shot(page, "steering")

    answer = tenant.api.get("/operations/v1")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
    assert tenant.api.get("/operations/v1").status_code == 200  # once only

    page.keyboard.press("Escape")
    page.locator('nav a[data-view="requests"]').focus()
    page.keyboard.press("Enter")  # the views are reachable by keyboard
    expect(page.locator("#view-requests")).to_be_visible()
    marked = page.locator("details.req.fault")
    expect(marked).to_have_count(1)
    expect(marked.locator("summary")).to_contain_text("/operations/v1")
    expect(marked.locator(".code")).to_contain_text("429")
    expect(page.locator("details.req")).to_have_count(3)
    marked.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(marked.locator(".req-body")).to_be_visible()
    expect(marked.locator(".req-body")).to_contain_text("status=429")
    expect(marked.locator(".req-body")).to_contain_text("user-agent")
    assert "authorization" not in marked.locator(".req-body").inner_text().lower()
    shot(page, "requests")

    page.locator("#req-status").fill("2xx")
    expect(page.locator("details.req")).to_have_count(2)
    expect(page.locator("details.req.fault")).to_have_count(0)
    page.locator("#req-status").fill("42")
    expect(page.locator("#req-error")).to_contain_text("status must be")


def test_a_preview_shows_the_first_rows_of_the_file(page: Any, emulator: str) -> None:
    tenant = Tenant(emulator, "preview")
    op_id = tenant.export(format="FORMAT_CSV")
    tenant.control("POST", f"operations/{op_id}/complete")
    lines = list(csv.reader(io.StringIO(tenant.file(op_id))))
    open_console(page, emulator, tenant)
    row = page.locator(f'tr[data-key="{tenant.id}/{op_id}"]')
    row.get_by_role("button", name="Preview").click()
    dialog = page.locator("#preview")
    expect(dialog).to_be_visible()
    expect(dialog.locator("tbody tr")).to_have_count(20)
    assert dialog.locator("thead th").all_inner_texts() == lines[0]
    cells = dialog.locator("tbody tr").first.locator("td")
    assert [cells.nth(i).get_attribute("title") for i in range(cells.count())] == lines[1]
    expect(dialog.locator("#preview-about")).to_contain_text("the file has more rows")
    shot(page, "preview")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_start_an_export_from_a_segment_and_steer_the_tenant(page: Any, emulator: str) -> None:
    tenant = Tenant(emulator, "segments")
    tenant.api.get("/segments/v1")
    open_console(page, emulator, None, "segments")
    start_button = page.locator('[data-segment="rageClicks"] .start')
    expect(start_button).to_be_enabled()  # all tenants: the demo key's tenant would export
    expect(page.locator("#seg-note")).to_contain_text("the demo key's tenant, na1.emul…")
    page.select_option("#tenant", tenant.id)
    expect(page.locator("#seg-note")).to_have_text(f"Exports start for tenant {name_of(tenant)}.")
    page.select_option("#seg-format", "FORMAT_NDJSON")
    expect(page.locator('[data-segment="rageClicks"] pre')).to_contain_text('"EventType": "thrash"')
    shot(page, "segments")
    start_button.click()
    expect(page.locator("#view-operations")).to_be_visible()
    listed = tenant.api.get("/operations/v1").json()["operations"]
    assert len(listed) == 1
    expect(page.locator(f'tr[data-key="{tenant.id}/{listed[0]["id"]}"]')).to_contain_text(
        "Rage Clicks · NDJSON"
    )

    open_console(page, emulator, tenant, "steering")
    settings = page.locator("#config-form")
    settings.get_by_label("URL TTL (s)").fill("45")
    settings.get_by_label("Export duration (s)").fill("0.5")
    settings.get_by_role("button", name="Save").click()
    expect(page.locator("#config-effective")).to_contain_text("URL TTL 45 s")
    config = tenant.control("GET", "config")
    assert (config["urlTtl"], config["exportDuration"]) == (45, 0.5)

    life = page.locator("#life-form")
    life.get_by_label("Finish").select_option("finishAfterPolls")
    life.get_by_label("Value").fill("2")
    life.get_by_label("Fail with").fill("disk full")
    life.get_by_role("button", name="Add rule").click()
    expect(page.locator("#life-body")).to_contain_text("after 2 polls, then fails: disk full")
    rule = tenant.control("GET", "lifecycle")["lifecycle"]
    assert [(r["finishAfterPolls"], r["fail"]) for r in rule] == [(2, "disk full")]
    page.get_by_role("button", name=f"Remove {rule[0]['id']}").click()
    expect(page.locator("#life-empty")).to_be_visible()
    assert tenant.control("GET", "lifecycle")["lifecycle"] == []

    page.select_option("#scenario", "rate-limited")
    page.get_by_role("button", name="Apply scenario").click()
    expect(page.locator("#status")).to_have_text("Scenario rate-limited applied")
    page.get_by_role("button", name="Reset…").click()
    expect(page.locator("#reset-question")).to_have_text(f"Reset tenant {name_of(tenant)}?")
    page.get_by_role("button", name="Yes, reset").click()
    expect(page.locator("#status")).to_have_text(f"Tenant {name_of(tenant)} reset")
    assert set(tenant.control("GET", "config")["overrides"].values()) == {None}
    assert tenant.api.get("/operations/v1").json()["operations"] == []


def test_the_failure_state_control(page: Any, emulator: str) -> None:
    tenant = Tenant(emulator, "failure")
    probe = tenant.api.post("/__emulator/config", json={"failureState": "FAILED"})
    if probe.status_code == 400:
        pytest.skip("POST /__emulator/config does not take failureState on this branch yet")
    tenant.control("POST", "config", {"failureState": "ERROR"})
    open_console(page, emulator, tenant, "steering")
    page.select_option("#failure-state", "FAILED")
    page.locator("#failure-form").get_by_role("button", name="Apply").click()
    expect(page.locator("#config-effective")).to_contain_text("end in FAILED")
    assert tenant.control("GET", "config")["failureState"] == "FAILED"


def test_without_the_token_the_page_shows_only_the_prompt(page: Any, locked: str) -> None:
    tenant = Tenant(locked, "locked")
    response = tenant.api.post(
        "/segments/v1/exports",
        json={"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"},
    )
    op_id = response.json()["operationId"]
    page.goto(f"{locked}/__emulator/ui")
    expect(page.locator("#gate")).to_be_visible()
    for hidden in ("#app", "#controls", "#connecting"):
        expect(page.locator(hidden)).to_be_hidden()
    assert page.locator("#gate-token").evaluate("input => input === document.activeElement")
    visible = page.locator("body").inner_text()
    assert op_id not in visible and tenant.id not in visible and "Operations" not in visible
    shot(page, "token-prompt")

    page.fill("#gate-token", "wrong")
    page.keyboard.press("Enter")
    expect(page.locator("#gate-error")).to_have_text("That token was not accepted.")
    expect(page.locator("#app")).to_be_hidden()

    page.fill("#gate-token", TOKEN)
    page.get_by_role("button", name="Unlock").click()
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator(f'tr[data-key="{tenant.id}/{op_id}"]')).to_be_visible()
    page.reload()  # the token is kept for the tab
    expect(page.locator("#app")).to_be_visible()


def test_a_fresh_console_starts_an_export_and_watches_it_complete(
    page: Any, tmp_path: Path
) -> None:
    """No API call before: no tenant exists, yet the console can start an export (for the demo
    key's tenant, which it names so) and shows it climb to COMPLETED as its clock moves."""
    process, base, _ = start(tmp_path, "--population", "60", "--export-duration", "30")
    try:
        page.goto(f"{base}/__emulator/ui#segments")
        demo = page.locator(f'#tenant option[value="{key_id(DEMO_KEY)}"]')
        expect(demo).to_have_text(f"na1.emul… (demo key) · {key_id(DEMO_KEY)[:6]}")
        start_button = page.locator('[data-segment="everyone"] .start')
        expect(start_button).to_be_enabled()
        start_button.click()
        expect(page.locator("#view-operations")).to_be_visible()
        row = page.locator("#ops-body tr").first
        expect(row.locator(".op-state")).to_have_text("PENDING")
        expect(row.locator(".c-tenant")).to_have_text(
            f"na1.emul… (demo key) · {key_id(DEMO_KEY)[:6]}"
        )
        page.get_by_role("button", name="+1 min").click()
        expect(row.locator(".op-state")).to_have_text("COMPLETED")
        expect(row.locator(".pct")).to_have_text("100%")
        [op] = httpx.get(f"{base}/__emulator/operations").json()["operations"]
        assert (op["tenant"], op["state"]) == (key_id(DEMO_KEY), "COMPLETED")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_use_a_key_chooses_its_tenant_and_keeps_no_key(page: Any, emulator: str) -> None:
    key = "eu1.console-pasted-key"
    open_console(page, emulator)
    page.fill("#use-key-value", key)
    page.get_by_role("button", name="Use", exact=True).click()
    expect(page.locator("#tenant")).to_have_value(key_id(key))
    expect(page.locator(f'#tenant option[value="{key_id(key)}"]')).to_have_text(
        f"eu1.cons… · {key_id(key)[:6]}"
    )
    assert page.locator("#use-key-value").input_value() == ""
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert key not in stored and key not in page.content()


def test_the_clock_is_set_in_utc_whatever_the_locale(browser: Any, emulator: str) -> None:
    context = browser.new_context(viewport=WIDE, locale="en-US", timezone_id="America/New_York")
    tab = context.new_page()
    tenant = Tenant(emulator, "utc")
    tenant.api.get("/segments/v1")
    open_console(tab, emulator, tenant)
    field = tab.locator("#clock-set-value")
    assert field.get_attribute("placeholder") == "2026-03-01T12:00:00Z"
    field.fill("2031-05-06 07:08:09Z")
    tab.locator("#clock-set").get_by_role("button", name="Set").click()
    expect(tab.locator("#status")).to_have_text("Clock set to 2031-05-06 07:08:09 UTC")
    moved = parse(tenant.control("GET", "clock")["now"]) - parse("2031-05-06T07:08:09.000Z")
    assert timedelta(0) <= moved < timedelta(minutes=1)  # set in UTC, not New York's time
    context.close()


ELSEWHERE = "<!doctype html><title>a page elsewhere</title><p>nothing to see"
HOSTILE_POSTS = """async (base) => {
  const post = (path, init) =>
    fetch(base + path, { method: "POST", mode: "no-cors", ...init }).catch((e) => String(e));
  await post("/__emulator/faults", { body: '{"path":"*","status":503}' }); // text/plain
  await post("/__emulator/clock", { body: new URLSearchParams({ advance: "86400" }) }); // a form
  await post("/__emulator/reset", {}); // no body at all
}"""


def test_a_page_elsewhere_cannot_steer_the_emulator(browser: Any, tmp_path: Path) -> None:
    """What the browser really sends: a page of another site posting simple requests (no CORS
    preflight) is refused by its Origin, and a rebinding name (resolved to 127.0.0.1 by the
    browser) by its Host; the state is as it was."""
    process, base, _ = start(tmp_path, "--population", "30")
    port = base.rsplit(":", 1)[1]
    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    # Chromium's Private Network Access would stop these posts before they leave (a public
    # page, a loopback target); Firefox and Safari have none, and a page served from this
    # machine (a dev server's) meets none. Off, so the emulator itself must refuse them.
    no_pna = (
        "--disable-features=BlockInsecurePrivateNetworkRequests,"
        "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,"
        "LocalNetworkAccessChecks"
    )
    # a browser of its own flags, from the module's Playwright (one Playwright per process)
    chromium = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules, no_pna]
    )
    try:
        tab = chromium.new_context().new_page()
        api = Tenant(base, "hostile")
        api.control("POST", "clock", {"freeze": True})
        before = api.control("GET", "clock")
        operation = api.export()
        tab.route(
            "http://elsewhere.example/**",
            lambda route: route.fulfill(status=200, content_type="text/html", body=ELSEWHERE),
        )
        tab.goto("http://elsewhere.example/")
        tab.evaluate(HOSTILE_POSTS, base)
        metrics = httpx.get(f"{base}/metrics").text  # they arrived, and were refused
        assert 'requests_total{method="POST",route="unmatched",status="403"} 3.0' in metrics
        assert httpx.get(f"{base}/__emulator/faults").json() == {"faults": []}
        assert api.control("GET", "clock") == before
        assert api.api.get(f"/operations/v1/{operation}").status_code == 200  # not reset

        rebound = tab.goto(f"http://evil.example:{port}/__emulator/ui")
        assert rebound is not None and rebound.status == 421
        assert "evil.example" in tab.locator("body").inner_text()
    finally:
        chromium.close()
        stop(process)


FILLED = {
    "operations": "#ops-body tr",
    "requests": "details.req",
    "steering": "#scenario option",
    "segments": "article.seg",
}


def test_fits_a_phone_and_the_desktop_without_sideways_scrolling(
    browser: Any, emulator: str
) -> None:
    tenant = Tenant(emulator, "phone")
    tenant.export()
    tenant.api.get("/operations/v1")
    for name, viewport in (("phone", PHONE), ("desktop", WIDE)):
        context = browser.new_context(viewport=viewport)
        tab = context.new_page()
        open_console(tab, emulator, tenant)
        for link in tab.locator("nav.tabs a").all():  # every tab in sight, none cut off
            box = link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
        before = tab.locator("#tenant").bounding_box()
        Tenant(emulator, f"new-{name}").api.get("/segments/v1")  # a tenant appears
        tab.click('nav a[data-view="segments"]')
        expect(
            tab.locator(f'#tenant option[value="{key_id(f"na1.console-new-{name}-key")}"]')
        ).to_be_attached()
        assert tab.locator("#tenant").bounding_box() == before  # the header does not jump
        for view, filled in FILLED.items():
            tab.click(f'nav a[data-view="{view}"]')
            expect(tab.locator(filled).first).to_be_attached()
            width = tab.evaluate("document.scrollingElement.scrollWidth")
            assert width <= viewport["width"], (name, view, width)
            if name == "phone":
                shot(tab, f"phone-{view}", full_page=True)
        context.close()
