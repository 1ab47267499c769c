"""Fixtures of the web UI's browser tests: Debian's chromium driven by playwright, a signed-in
page at a desktop size and at a phone's, axe-core's check, screenshots and the secret checks.

Run by `crates/cli/tests/browser.rs`, which starts `wharf serve` and the S3 servers and passes
their addresses in the environment (WHARF_URL, WHARF_S3_*, WHARF_MOTO_*...).
"""

import json
import os
import pathlib
import subprocess

import boto3
import pytest
from playwright.sync_api import Page, expect, sync_playwright

URL = os.environ["WHARF_URL"].rstrip("/")
EMAIL = os.environ["WHARF_UI_EMAIL"]
PASSWORD = os.environ["WHARF_UI_PASSWORD"]
CANARY = os.environ["WHARF_UI_CANARY"]
AXE = pathlib.Path(os.environ["WHARF_AXE_JS"]).read_text()
SHOTS = pathlib.Path(os.environ["WHARF_SCREENSHOTS"])
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session", autouse=True)
def screenshots_folder():
    """A fresh record of axe's findings for this run (screenshots are overwritten)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "axe.txt").write_text("")


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


def sign_in(page: Page, email: str = EMAIL, password: str = PASSWORD):
    page.goto(URL + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Destinations", exact=True)).to_be_visible()


@pytest.fixture(scope="session")
def signed_in_state(browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page)
    state = context.storage_state()
    context.close()
    return state


class Watched:
    """A page whose console errors (a script error, a CSP violation) and dialogs are recorded."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.problems = []
        def console(m):
            # A 4xx page is the answer a test asked for (a form error, a not-found page);
            # anything else (a script error, a CSP violation) is a problem.
            expected = m.text.startswith(
                "Failed to load resource: the server responded with a status of 4"
            ) or m.text.startswith(
                # A live count cancelled by a newer edit (hx-sync="this:replace"): as asked.
                ("htmx:sendAbort", "htmx:afterRequest")
            )
            if m.type == "error" and not expected:
                self.problems.append(m.text)

        self.page.on("console", console)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

        def dialog(d):
            self.problems.append(f"a dialog opened: {d.message}")
            d.dismiss()

        self.page.on("dialog", dialog)


def _page(browser, state, viewport):
    context = browser.new_context(viewport=viewport, storage_state=state)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=URL)
    watched = Watched(context)
    yield watched.page
    problems = list(watched.problems)
    context.close()
    assert not problems, f"the browser reported: {problems}"


@pytest.fixture
def page(browser, signed_in_state):
    """A signed-in page at 1280x800."""
    yield from _page(browser, signed_in_state, DESKTOP)


@pytest.fixture
def phone(browser, signed_in_state):
    """A signed-in page at a 390px-wide phone screen."""
    yield from _page(browser, signed_in_state, PHONE)


@pytest.fixture
def anonymous(browser):
    """A page with no session."""
    yield from _page(browser, None, DESKTOP)


def check_axe(page: Page, what: str):
    """axe-core on the page as it is: no serious or critical violation."""
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{what}: " + json.dumps(
        [{"id": v["id"], "impact": v["impact"], "help": v["help"],
          "nodes": [n["html"][:200] for n in v["nodes"][:3]]} for v in bad],
        indent=1,
    )
    minor = sorted({f'{v["id"]} ({v["impact"]})' for v in result["violations"]})
    record = SHOTS / "axe.txt"
    with record.open("a") as f:
        f.write(f"{what}: {len(result['violations'])} violations; minor: {', '.join(minor) or 'none'}\n")


def check_secrets(page: Page, *secrets: str):
    """The page's HTML holds no secret (the canary, the password, the given ones)."""
    html = page.content()
    for secret in (CANARY, PASSWORD, *secrets):
        assert secret not in html, f"a secret is in the HTML of {page.url}"


def shot(page: Page, name: str):
    """A full-page screenshot under .screenshots/, for people to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def look(page: Page, name: str, *secrets: str):
    """The checks every page gets: axe, secrets, a screenshot, no horizontal scrolling."""
    check_axe(page, name)
    check_secrets(page, *secrets)
    shot(page, name)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"


@pytest.fixture(scope="session")
def s3():
    """An admin client of the in-process S3 server the access-key destinations write to."""
    return boto3.client(
        "s3",
        endpoint_url=os.environ["WHARF_S3_ENDPOINT"],
        aws_access_key_id=os.environ["WHARF_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["WHARF_S3_SECRET_KEY"],
        region_name="us-east-1",
    )


@pytest.fixture(scope="session")
def iam():
    """moto's IAM, as the bucket owner (its admin user)."""
    return boto3.client(
        "iam",
        endpoint_url=os.environ["WHARF_MOTO_ENDPOINT"],
        aws_access_key_id=os.environ["WHARF_MOTO_ADMIN_KEY"],
        aws_secret_access_key=os.environ["WHARF_MOTO_ADMIN_SECRET"],
        region_name="us-east-1",
    )


def wharf(*args, env=None):
    """The CLI on the server's home, for what a journey takes as given."""
    home = os.environ["WHARF_HOME"]
    full_env = {**os.environ, "WHARF_ALLOW_PRIVATE_ENDPOINTS": "1", **(env or {})}
    out = subprocess.run([os.environ["WHARF_BIN"], "--home", home, *args],
                         capture_output=True, text=True, env=full_env)
    assert out.returncode == 0, out.stdout + out.stderr


def add_destination(name: str, prefix: str, endpoint: str = None):
    """An access-key destination on the in-process S3 server's bucket (or another endpoint
    that forwards to it)."""
    wharf("destination", "add", "s3", name, "--bucket", os.environ["WHARF_S3_BUCKET"],
          "--region", "us-east-1", "--prefix", prefix, "--auth", "access-key",
          "--access-key-id", os.environ["WHARF_S3_ACCESS_KEY"], "--secret-access-key-env", "S3_SECRET",
          "--endpoint", endpoint or os.environ["WHARF_S3_ENDPOINT"],
          env={"S3_SECRET": os.environ["WHARF_S3_SECRET_KEY"]})
