"""What a hostile page or user could try: forged forms, markup in input, other workspaces,
secrets in pages, and the headers and cookie every response carries."""

import os
import pathlib
import re
import subprocess

from conftest import CANARY, EMAIL, URL, expect, look, sign_in
from playwright.sync_api import Page

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "{{ 7*7 }}{% if true %}x{% endif %}",
]


def test_markup_in_input_is_shown_as_text(page: Page):
    for text in HOSTILE:
        page.goto(URL + "/destinations/new")
        page.get_by_label("Name", exact=True).fill(text)
        page.get_by_label("Bucket", exact=True).fill(text)
        page.get_by_label("Prefix").fill(text)
        page.get_by_role("radio", name="Cross-account role").check()
        page.get_by_label("Role ARN").fill(text)
        page.get_by_role("button", name="Save").click()
        # The error quotes the value: as text, not as markup or a template.
        alert = page.get_by_role("alert")
        expect(alert).to_be_visible()
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("main script").count() == 0
        expect(page.get_by_label("Name", exact=True)).to_have_value(text)
        assert "49" not in alert.inner_text()
    look(page, "destination-hostile-input-desktop")
    # A hostile path is a not-found page that names nothing it should not.
    page.goto(URL + "/destinations/%3Cscript%3Ealert(3)%3C%2Fscript%3E")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert page.locator("main script").count() == 0


def test_a_forged_form_is_refused(page: Page):
    page.goto(URL + "/destinations")
    form = {"name": "forged", "bucket": "forged-bucket", "region": "us-east-1", "auth": "role",
            "role_arn": "arn:aws:iam::123456789012:role/x", "action": "save"}
    # No token, a wrong token, the right token from another site: all refused.
    no_token = page.request.post(URL + "/destinations", form=form, max_redirects=0)
    assert no_token.status == 403, no_token.status
    wrong = page.request.post(URL + "/destinations", form={**form, "csrf": "0" * 64}, max_redirects=0)
    assert wrong.status == 403, wrong.status
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    elsewhere = page.request.post(URL + "/destinations", form={**form, "csrf": token},
                                  headers={"Origin": "http://evil.example"}, max_redirects=0)
    assert elsewhere.status == 403, elsewhere.status
    # The same form with the session's token goes through: the refusals were the token's doing.
    ok = page.request.post(URL + "/destinations", form={**form, "csrf": token}, max_redirects=0)
    assert ok.status == 303, ok.status
    page.goto(URL + "/destinations/forged/delete")
    page.get_by_role("button", name="Delete destination").click()
    expect(page.get_by_text("Destination deleted.")).to_be_visible()


def test_another_workspaces_destination_is_not_found(page: Page):
    for path in ["/destinations/hidden", "/destinations/hidden/delete", "/destinations/hidden/rotate"]:
        response = page.goto(URL + path)
        assert response.status == 404, (path, response.status)
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    look(page, "not-found-desktop")
    page.goto(URL + "/destinations")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    for action in ["connect", "delete", "rotate"]:
        r = page.request.post(URL + f"/destinations/hidden/{action}", form={"csrf": token}, max_redirects=0)
        assert r.status == 404, (action, r.status)
    page.goto(URL + "/destinations")
    expect(page.get_by_role("link", name="hidden")).to_have_count(0)


def test_every_response_carries_the_security_headers(page: Page):
    for path in ["/destinations", "/destinations/new", "/sign-in", "/no-such-page"]:
        r = page.request.get(URL + path, max_redirects=0)
        h = r.headers
        csp = h.get("content-security-policy", "")
        script_src = re.search(r"script-src ([^;]*)", csp)
        assert script_src and "unsafe-inline" not in script_src.group(1), (path, csp)
        assert "frame-ancestors 'none'" in csp, (path, csp)
        assert h.get("x-frame-options") == "DENY", path
        assert h.get("x-content-type-options") == "nosniff", path
        assert h.get("referrer-policy"), path
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["wharf_session"]
    assert session["httpOnly"] and session["sameSite"] in ("Lax", "Strict"), session
    assert CANARY not in session["value"]


def test_signing_in_and_out(anonymous: Page):
    page = anonymous
    page.goto(URL + "/destinations/new")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    look(page, "sign-in-desktop")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("the email or the password is not right")
    expect(page.get_by_label("Email")).to_have_value(EMAIL)
    look(page, "sign-in-failed-desktop")
    # Back to the page that asked for the sign-in.
    page.get_by_label("Password").fill(__import__("os").environ["WHARF_UI_PASSWORD"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Add an S3 destination")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(URL + "/destinations")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_failed_sign_ins_are_throttled_per_account(browser):
    context = browser.new_context()
    page = context.new_page()
    victim = "throttle-target@example.com"
    for _ in range(5):
        page.goto(URL + "/sign-in")
        page.get_by_label("Email").fill(victim)
        page.get_by_label("Password").fill("wrong password 123")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not right")
    page.goto(URL + "/sign-in")
    page.get_by_label("Email").fill(victim)
    page.get_by_label("Password").fill("wrong password 123")
    response = page.expect_response(lambda r: r.url.endswith("/sign-in") and r.request.method == "POST")
    with response as info:
        page.get_by_role("button", name="Sign in").click()
    assert info.value.status == 429
    expect(page.get_by_role("alert")).to_contain_text("too many failed sign-ins")
    context.close()


def test_markup_in_sql_and_filter_values_is_shown_as_text(page: Page):
    folder = pathlib.Path(os.environ["WHARF_HOME"]) / "warehouse" / "hostile"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.csv").write_text('id,note\n1,"<script>alert(4)</script>"\n2,"{{ 7*7 }}"\n')
    env = {**os.environ, "WHARF_ALLOW_PRIVATE_ENDPOINTS": "1"}
    home = ["--home", os.environ["WHARF_HOME"]]
    for args in (["source", "add", "local", "hostile", "--path", str(folder)],
                 ["model", "add", "notes", "--source", "hostile", "--sql", "SELECT * FROM notes",
                  "--primary-key", "id"]):
        out = subprocess.run([os.environ["WHARF_BIN"], *home, *args], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    # Values from the data, SQL typed in the editor, and the error quoting it: text, never markup.
    page.goto(URL + "/models/notes")
    expect(page.locator("table.rows")).to_contain_text("<script>alert(4)</script>")
    expect(page.locator("table.rows")).to_contain_text("{{ 7*7 }}")
    page.goto(URL + "/models/new")
    page.get_by_label("Source").select_option("hostile")
    page.get_by_label("SQL").fill("SELECT '<img src=x onerror=alert(5)>' AS x, {{ 7*7 }} FROM notes")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    # A filter value: in the builder, in the count's SQL parameters, in the saved segment.
    page.goto(URL + "/segments/new?model=notes")
    page.get_by_label("Column").first.select_option("note")
    page.get_by_label("Value").first.fill("<script>alert(4)</script>")
    expect(page.locator("[data-count]")).to_have_attribute("data-count", "1")
    page.get_by_text("Compiled SQL").click()
    expect(page.locator("#count .params")).to_contain_text("<script>alert(4)</script>")
    page.get_by_label("Name", exact=True).fill("hostile-notes")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment saved.")).to_be_visible()
    expect(page.get_by_label("Value").first).to_have_value("<script>alert(4)</script>")
    assert page.locator("main script").count() == 0
    look(page, "segment-hostile-desktop")
