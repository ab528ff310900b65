"""The console's pages (fullstory_emulator/http/console): served from the package with a strict
content security policy, reached from `/` by a browser, needing no token themselves, and calling
only control endpoints that exist and are documented. What the page does is tested in a real browser
in tests/e2e/test_console.py."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from tests.helpers import assert_error

UI = "/__emulator/ui"
STATIC = files("fullstory_emulator.http.console") / "static"


def test_the_page_is_served_with_a_strict_policy(harness):
    response = harness.client.get(UI)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == (STATIC / "index.html").read_text(encoding="utf-8")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    # everything the page loads is its own: no CDN, no inline script
    assert re.findall(r'(?:src|href)="([^"#]+)"', response.text) == [
        "data:,",
        f"{UI}/console.css",
        f"{UI}/console.js",
    ]
    assert "<script>" not in response.text and " style=" not in response.text


@pytest.mark.parametrize(
    "name,media_type",
    [("console.css", "text/css; charset=utf-8"), ("console.js", "text/javascript; charset=utf-8")],
)
def test_assets(harness, name, media_type):
    response = harness.client.get(f"{UI}/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == (STATIC / name).read_bytes()


@pytest.mark.parametrize("name", ["index.html", "nope.js", "..%2Fcontrol.py"])
def test_other_asset_names_are_404_json(harness, name):
    err = assert_error(harness.client.get(f"{UI}/{name}"), 404, 5)
    assert UI in err["message"]


@pytest.mark.parametrize("path", ["/", "/__emulator"])
def test_a_browser_is_sent_to_the_console_and_other_clients_get_404(harness, path):
    browser = harness.client.get(path, headers={"Accept": "text/html,*/*"}, follow_redirects=False)
    assert browser.status_code == 302 and browser.headers["location"] == UI
    err = assert_error(harness.client.get(path, headers={"Accept": "application/json"}), 404, 5)
    assert path in err["message"] and UI in err["message"]
    assert_error(harness.client.get(path), 404, 5)  # httpx sends Accept: */*


def test_trailing_slashes_lead_to_the_console(harness):
    response = harness.client.get("/__emulator/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert [r.headers["location"] for r in response.history][-1] == UI
    assert harness.client.get(f"{UI}/").text == harness.client.get(UI).text


def test_pages_need_no_token_and_are_not_journaled(make_harness):
    h = make_harness(control_token="s3cret")
    for path in (UI, f"{UI}/console.js", f"{UI}/console.css"):
        assert h.client.get(path).status_code == 200
    assert_error(h.client.get("/__emulator/tenants"), 401, 16)
    journal = h.client.get("/__emulator/journal", headers={"X-Emulator-Token": "s3cret"})
    assert journal.json() == {"requests": []}


def test_the_script_calls_only_documented_control_endpoints(harness):
    """Whatever the console does, a script can do: each call in console.js is an endpoint of
    /openapi.json, with the method the document gives it."""
    script = (STATIC / "console.js").read_text(encoding="utf-8")
    calls = set(re.findall(r'call\(\s*"([A-Z]+)",\s*[`"]([^`"?]+)', script))
    assert len(calls) >= 20, calls
    documented = harness.client.get("/openapi.json").json()["paths"]
    patterns = [
        (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), set(item))
        for path, item in documented.items()
    ]
    missing = []
    for method, template in sorted(calls):
        path = "/__emulator" + re.sub(r"\$\{[^}]+\}", "x", template)
        if not any(p.match(path) and method.lower() in methods for p, methods in patterns):
            missing.append(f"{method} {path}")
    assert not missing, missing
