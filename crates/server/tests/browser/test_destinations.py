"""Journeys through the destination pages, as a person who has never read the docs would take
them: add a destination, follow what the page says, press Connect, read what it found."""

import json
import os

from conftest import CANARY, URL, expect, look
from playwright.sync_api import Page

S3_ENDPOINT = os.environ["WHARF_S3_ENDPOINT"]
S3_KEY = os.environ["WHARF_S3_ACCESS_KEY"]
S3_SECRET = os.environ["WHARF_S3_SECRET_KEY"]
S3_BUCKET = os.environ["WHARF_S3_BUCKET"]
MOTO_BUCKET = os.environ["WHARF_MOTO_BUCKET"]


def fill_access_key_destination(page: Page, name: str, secret: str = S3_SECRET):
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Bucket", exact=True).fill(S3_BUCKET)
    page.get_by_label("Region").fill("us-east-1")
    page.get_by_label("Prefix").fill(f"{name}/")
    page.get_by_role("radio", name="Access key", exact=True).check()
    page.get_by_label("Access key ID").fill(S3_KEY)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_text("Delivery options (advanced)").click()
    page.get_by_label("Endpoint").fill(S3_ENDPOINT)


def test_an_empty_workspace_says_what_to_do_first(page: Page, phone: Page):
    # team-b has nothing yet: switch to it, look, and switch back.
    page.goto(URL + "/destinations")
    page.get_by_label("Workspace").select_option("team-b")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("heading", name="No destinations yet")).to_be_visible()
    expect(page.get_by_role("link", name="Add a destination")).to_be_visible()
    look(page, "destinations-empty-desktop")
    phone.goto(URL + "/destinations")
    expect(phone.get_by_role("heading", name="No destinations yet")).to_be_visible()
    look(phone, "destinations-empty-phone")
    page.get_by_label("Workspace").select_option("default")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_label("Workspace")).to_have_value("default")


def test_an_access_key_destination_connects_and_leaves_nothing(page: Page, phone: Page, s3):
    page.goto(URL + "/destinations")
    page.get_by_role("link", name="Add a destination").first.click()
    expect(page.get_by_role("heading", name="Add an S3 destination")).to_be_visible()
    # The role method is the default: its fields show, the key's do not.
    expect(page.get_by_label("Role ARN")).to_be_visible()
    expect(page.get_by_label("Secret access key")).to_be_hidden()
    look(page, "destination-new-role-desktop")
    fill_access_key_destination(page, "key-lake")
    # The form adapted: the key's fields show, the role's do not.
    expect(page.get_by_label("Role ARN")).to_be_hidden()
    look(page, "destination-new-key-desktop", S3_SECRET)
    page.get_by_role("button", name="Connect").click()

    expect(page.get_by_role("heading", name="Connection test: key-lake")).to_be_visible()
    expect(page.get_by_text("Connected.")).to_be_visible()
    steps = page.locator("ol.steps > li")
    expect(steps).to_have_count(5)
    for i in range(5):
        expect(steps.nth(i)).to_contain_text("passed")
    expect(page.get_by_text("Nothing was left in your bucket")).to_be_visible()
    look(page, "destination-test-passed-desktop", S3_SECRET)
    listed = s3.list_objects_v2(Bucket=S3_BUCKET, Prefix="key-lake/")
    assert listed.get("KeyCount", 0) == 0, listed
    uploads = s3.list_multipart_uploads(Bucket=S3_BUCKET, Prefix="key-lake/")
    assert not uploads.get("Uploads"), uploads

    page.get_by_role("link", name="Back to key-lake").click()
    expect(page.get_by_text("Passing")).to_be_visible()
    # The secret is write-only: the page shows a fingerprint and a way to replace it.
    expect(page.get_by_text("Replace secret")).to_be_visible()
    assert S3_KEY not in page.content(), "the whole access key id is shown"
    look(page, "destination-key-desktop", S3_SECRET)
    phone.goto(URL + "/destinations/key-lake")
    look(phone, "destination-key-phone", S3_SECRET)

    page.goto(URL + "/destinations")
    row = page.get_by_role("row").filter(has_text="key-lake")
    expect(row).to_contain_text("Passing")
    look(page, "destinations-desktop", S3_SECRET)
    phone.goto(URL + "/destinations")
    look(phone, "destinations-phone", S3_SECRET)


def test_a_role_destination_shows_its_policies_and_diagnoses_a_wrong_external_id(
    page: Page, phone: Page, iam
):
    page.goto(URL + "/destinations/new")
    page.get_by_label("Name", exact=True).fill("role-lake")
    page.get_by_label("Bucket", exact=True).fill(MOTO_BUCKET)
    page.get_by_label("Region").fill("us-east-1")
    page.get_by_label("Prefix").fill("exports/")
    page.get_by_role("radio", name="Cross-account role").check()
    page.get_by_label("Role ARN").fill("arn:aws:iam::123456789012:role/ui-wrong-id")
    # wharf's principal is shown before saving, for the trust policy.
    expect(page.locator("#principal-arn")).to_have_text("arn:aws:iam::123456789012:user/wharf")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="role-lake")).to_be_visible()
    external_id = page.locator("#external-id").inner_text()
    assert external_id.startswith("wharf-"), external_id
    expect(page.locator("#principal-arn")).to_have_text("arn:aws:iam::123456789012:user/wharf")
    expect(page.get_by_text("Trust relationships")).to_be_visible()

    # The copy buttons copy valid JSON: the exact policies, External ID included.
    page.get_by_role("button", name="Copy trust policy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    trust = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert trust["Version"] == "2012-10-17"
    statement = trust["Statement"][0]
    assert statement["Principal"]["AWS"] == "arn:aws:iam::123456789012:user/wharf"
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == external_id
    page.get_by_role("button", name="Copy permission policy").click()
    permission = json.loads(page.evaluate("navigator.clipboard.readText()"))
    actions = sorted(a for s in permission["Statement"] for a in
                     (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    assert actions == ["s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads",
                       "s3:ListMultipartUploadParts", "s3:PutObject"], actions
    look(page, "destination-role-desktop")
    phone.goto(URL + "/destinations/role-lake")
    look(phone, "destination-role-phone")

    # The bucket owner installs the trust policy, but with another External ID.
    wrong = dict(trust)
    wrong["Statement"] = [dict(statement, Condition={"StringEquals": {"sts:ExternalId": "not-the-one-wharf-made"}})]
    iam.create_role(RoleName="ui-wrong-id", AssumeRolePolicyDocument=json.dumps(wrong))
    iam.put_role_policy(RoleName="ui-wrong-id", PolicyName="wharf", PolicyDocument=json.dumps(permission))

    page.get_by_role("button", name="Connect").first.click()
    expect(page.get_by_text("The test failed.")).to_be_visible()
    first = page.locator("ol.steps > li").first
    expect(first).to_contain_text("failed")
    expect(first).to_contain_text("External ID")
    expect(first).to_contain_text("How to fix:")
    expect(page.get_by_text("Nothing was left in your bucket")).to_be_visible()
    look(page, "destination-test-failed-desktop")

    # Rotating asks first, says what happens, then gives a new ID.
    page.get_by_role("link", name="Back to role-lake").click()
    page.get_by_role("link", name="Rotate External ID…").click()
    expect(page.get_by_text("can no longer assume the role")).to_be_visible()
    look(page, "confirm-rotate-desktop")
    page.get_by_role("button", name="Rotate External ID").click()
    expect(page.get_by_text("New External ID generated")).to_be_visible()
    assert page.locator("#external-id").inner_text() != external_id
    # The badge says what happened since the last test.
    expect(page.locator(".page-head .badge")).to_contain_text("External ID rotated")


def test_bad_input_is_shown_at_its_field_and_nothing_is_saved(page: Page):
    page.goto(URL + "/destinations/new")
    fill_access_key_destination(page, "bad-bucket", secret=CANARY)
    page.get_by_label("Bucket", exact=True).fill("My_Bucket")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("My_Bucket")
    bucket = page.get_by_label("Bucket", exact=True)
    expect(bucket).to_have_attribute("aria-invalid", "true")
    expect(bucket).to_have_value("My_Bucket")
    # What was typed stays, except the secret, which never comes back.
    expect(page.get_by_label("Name", exact=True)).to_have_value("bad-bucket")
    expect(page.get_by_label("Secret access key")).to_have_value("")
    look(page, "destination-error-desktop")
    page.goto(URL + "/destinations")
    expect(page.get_by_role("link", name="bad-bucket")).to_have_count(0)


def test_the_destination_form_can_be_completed_with_the_keyboard_alone(page: Page):
    page.goto(URL + "/destinations/new")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("keyboard-lake")
    page.keyboard.press("Tab")
    page.keyboard.type(S3_BUCKET)
    page.keyboard.press("Tab")
    page.keyboard.type("us-east-1")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard/")
    # To the method choice; the arrow key moves from the role to the access key.
    page.keyboard.press("Tab")
    expect(page.get_by_role("radio", name="Cross-account role")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="Access key", exact=True)).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Access key ID")).to_be_focused()
    page.keyboard.type(S3_KEY)
    page.keyboard.press("Tab")
    page.keyboard.type(S3_SECRET)
    page.keyboard.press("Tab")
    # The advanced options open with Enter; the endpoint is the last field in them.
    expect(page.get_by_text("Delivery options (advanced)")).to_be_focused()
    page.keyboard.press("Enter")
    page.get_by_label("Endpoint").focus()
    expect(page.get_by_label("Endpoint")).to_be_focused()
    page.keyboard.type(S3_ENDPOINT)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Connected.")).to_be_visible()


def test_deleting_asks_first(page: Page):
    page.goto(URL + "/destinations/new")
    fill_access_key_destination(page, "short-lived")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Destination saved.")).to_be_visible()
    page.get_by_role("link", name="Delete destination…").click()
    expect(page.get_by_role("heading", name="Delete the destination short-lived?")).to_be_visible()
    look(page, "confirm-delete-desktop")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="short-lived")).to_be_visible()
    page.get_by_role("link", name="Delete destination…").click()
    page.get_by_role("button", name="Delete destination").click()
    expect(page.get_by_text("Destination deleted.")).to_be_visible()
    expect(page.get_by_role("link", name="short-lived")).to_have_count(0)


def test_replacing_the_secret_keeps_it_write_only(page: Page):
    page.goto(URL + "/destinations/new")
    fill_access_key_destination(page, "rekeyed")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Connected.")).to_be_visible()
    page.get_by_role("link", name="Back to rekeyed").click()
    page.get_by_text("Replace secret").click()
    page.get_by_label("Access key ID").fill(S3_KEY)
    page.get_by_label("Secret access key").fill(CANARY)
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("Access key replaced.")).to_be_visible()
    # A new key is unverified until Connect passes with it; this one is wrong, and says so.
    expect(page.locator(".page-head .badge")).to_contain_text("Unverified: changed since its last test")
    page.get_by_role("button", name="Connect").first.click()
    expect(page.get_by_text("The test failed.")).to_be_visible()
    expect(page.locator("ol.steps > li").first).to_contain_text("SignatureDoesNotMatch")
    look(page, "destination-wrong-secret-desktop", S3_SECRET)
