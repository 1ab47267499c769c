"""Syncs and runs: a scheduled diff sync made in the form (its keys and its schedule previewed
as they are typed), run now, its run page with its files, the file read back and compared with
the source rows; a long run followed live and cancelled; a sync's charts; a run whose endpoint
is down at first, retried until it delivers, with its attempts on its page."""

import csv
import io
import os
import pathlib
import socket
import struct
import threading
import urllib.parse

import pytest
from conftest import URL, add_destination, expect, look, wharf
from playwright.sync_api import Page

HOME = pathlib.Path(os.environ["WHARF_HOME"])
CROWD = HOME / "warehouse" / "crowd"
SMALL = HOME / "warehouse" / "small"
BUCKET = os.environ["WHARF_S3_BUCKET"]
BIG_ROWS = 1_000_000
SMALL_ROWS = 2_000


def people(path: pathlib.Path, n: int):
    path.mkdir(parents=True, exist_ok=True)
    with (path / "people.csv").open("w") as f:
        f.write("id,name,email,city,score\n")
        for i in range(1, n + 1):
            f.write(f"{i},Person {i},p{i}@example.com,City {i % 97},{(i * 37) % 1000}\n")


@pytest.fixture(scope="module", autouse=True)
def models():
    people(SMALL, SMALL_ROWS)
    people(CROWD, BIG_ROWS)
    wharf("source", "add", "local", "small", "--path", str(SMALL))
    wharf("source", "add", "local", "crowd", "--path", str(CROWD))
    wharf("model", "add", "small", "--source", "small", "--sql", "SELECT * FROM people", "--primary-key", "id")
    wharf("model", "add", "crowd", "--source", "crowd", "--sql", "SELECT * FROM people", "--primary-key", "id")
    add_destination("runs-lake", "runs/")


def test_a_scheduled_diff_sync_runs_now_and_delivers_its_rows(page: Page, phone: Page, s3):
    page.goto(URL + "/models/small")
    page.get_by_role("link", name="Sync it").click()
    expect(page.get_by_role("heading", name="Sync a model to a destination")).to_be_visible()
    look(page, "sync-new-desktop")
    phone.goto(page.url)
    look(phone, "sync-new-phone")
    page.get_by_label("Name", exact=True).fill("small-diff")
    page.get_by_label("Destination").select_option("runs-lake")
    page.get_by_role("radio", name="CSV").check()
    # Columns: leave the email out, rename the name.
    page.get_by_label("Export email").uncheck()
    page.get_by_label("Rename name to").fill("full_name")
    page.get_by_label("Key template").fill("{sync}/{YYYY}/{run}/part-{part}.{ext}")
    preview = page.locator("#sync-preview")
    expect(preview).to_contain_text(f"s3://{BUCKET}/runs/small-diff/")
    expect(preview).to_contain_text("part-00000.csv")
    page.get_by_role("radio", name="Changes").check()
    page.get_by_role("radio", name="At times of day").check()
    page.get_by_label("Times of day", exact=True).fill("03:15")
    page.get_by_label("Time zone").fill("Europe/Paris")
    expect(preview.locator(".schedule-words")).to_contain_text("03:15")
    expect(preview.locator(".schedule-words")).to_contain_text("Europe/Paris")
    expect(preview.locator(".next-runs li")).to_have_count(3)
    look(page, "sync-new-filled-desktop")
    # A wrong time zone is said at once, where the preview goes.
    page.get_by_label("Time zone").fill("Mars/Olympus")
    expect(preview).to_contain_text("Mars/Olympus")
    page.get_by_label("Time zone").fill("Europe/Paris")
    expect(preview.locator(".next-runs li")).to_have_count(3)
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Sync saved.")).to_be_visible()
    expect(page.locator(".schedule-words")).to_contain_text("03:15")
    look(page, "sync-desktop")
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Run of small-diff")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_contain_text("Succeeded", timeout=60_000)
    files = page.locator("section[aria-labelledby=files-heading] tbody tr")
    expect(files).to_have_count(1)
    expect(files.first).to_contain_text(f"{SMALL_ROWS:,}")
    key = files.first.locator("code").first.inner_text()
    assert key.startswith("runs/small-diff/"), key
    look(page, "run-desktop")
    phone.goto(page.url)
    look(phone, "run-phone")

    # The file, read back by Python's csv module, holds the source's rows as configured.
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == SMALL_ROWS
    assert set(rows[0]) == {"id", "full_name", "city", "score", "_change"}, rows[0].keys()
    assert {r["_change"] for r in rows} == {"added"}
    by_id = {int(r["id"]): r for r in rows}
    assert sorted(by_id) == list(range(1, SMALL_ROWS + 1))
    assert by_id[42]["full_name"] == "Person 42" and by_id[42]["score"] == str((42 * 37) % 1000)

    # A second run sends the changes (none), and the sync's page charts both runs.
    page.get_by_role("link", name="small-diff").first.click()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".page-head .badge")).to_contain_text("Succeeded", timeout=60_000)
    expect(page.locator("section[aria-labelledby=summary-heading]")).to_contain_text("0 / 0 / 0")
    page.goto(URL + "/syncs/small-diff")
    expect(page.locator("figure.chart")).to_have_count(2)
    expect(page.locator("table.runs tbody tr")).to_have_count(2)
    look(page, "sync-with-runs-desktop")
    phone.goto(URL + "/syncs/small-diff")
    look(phone, "sync-phone")
    page.goto(URL + "/runs?status=succeeded&sync=small-diff")
    expect(page.locator("table.runs tbody tr")).to_have_count(2)
    look(page, "runs-desktop")
    page.goto(URL + "/runs?status=failed&sync=small-diff")
    expect(page.get_by_role("heading", name="No runs match")).to_be_visible()


def test_a_long_run_shows_its_progress_and_can_be_cancelled(page: Page, s3):
    page.goto(URL + "/syncs/new?model=crowd")
    page.get_by_label("Name", exact=True).fill("crowd-all")
    page.get_by_label("Destination").select_option("runs-lake")
    page.get_by_role("radio", name="NDJSON").check()
    # Every kind of schedule is put in words with its next three runs as it is typed.
    words = page.locator("#sync-preview .schedule-words")
    page.get_by_role("radio", name="Every…").check()
    page.get_by_label("Every", exact=True).fill("6h")
    expect(words).not_to_contain_text("Manual")
    expect(page.locator("#sync-preview .next-runs li")).to_have_count(3)
    interval_words = words.inner_text()
    page.get_by_role("radio", name="Cron").check()
    page.get_by_label("Cron expression").fill("30 4 * * 1-5")
    expect(words).not_to_have_text(interval_words)
    expect(page.locator("#sync-preview .next-runs li").first).to_contain_text("04:30")
    page.get_by_label("Cron expression").fill("not a cron")
    expect(page.locator("#sync-preview")).to_contain_text("not a cron")
    page.get_by_role("radio", name="Manually").check()
    expect(page.locator("#sync-preview .schedule-words")).to_contain_text("Manual")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Sync saved.")).to_be_visible()
    page.get_by_role("button", name="Run now").click()
    live_rows = page.locator("[data-live-rows]")
    expect(live_rows).to_be_visible(timeout=30_000)
    expect(live_rows).not_to_have_attribute("data-live-rows", "0", timeout=30_000)
    look(page, "run-live-desktop")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator(".page-head .badge")).to_contain_text("Cancelled", timeout=30_000)
    expect(page.get_by_role("alert")).to_contain_text("Cancelled.")
    # Nothing of the cancelled run is left: no object, no open upload.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/crowd-all/")
    assert listed.get("KeyCount", 0) == 0, listed
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="runs/crowd-all/")
    assert not uploads.get("Uploads"), uploads


class Gate:
    """A TCP forwarder to the S3 server that drops every connection until it is opened: an
    endpoint that is down, then comes back. Counts the connections it dropped."""

    def __init__(self, upstream: str):
        target = urllib.parse.urlparse(upstream)
        self.upstream = (target.hostname, target.port)
        self.open = threading.Event()
        self.dropped = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                self.dropped += 1
                # A reset, as from a server that is not there.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


@pytest.fixture
def gate():
    g = Gate(os.environ["WHARF_S3_ENDPOINT"])
    yield g
    g.close()


def test_a_run_whose_endpoint_is_down_is_retried_and_shows_its_attempts(page: Page, phone: Page, s3, gate):
    add_destination("flaky-lake", "flaky/", endpoint=gate.endpoint)
    page.goto(URL + "/syncs/new?model=small")
    page.get_by_label("Name", exact=True).fill("small-retried")
    page.get_by_label("Destination").select_option("flaky-lake")
    page.get_by_role("radio", name="CSV").check()
    page.get_by_text("Retries and overlap (advanced)").click()
    page.get_by_label("Attempts per due time").fill("6")
    page.get_by_label("First retry after (seconds)").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Sync saved.")).to_be_visible()

    # The first attempt meets an endpoint that is down: it fails, and its page says that wharf
    # tries again and links to the retry.
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Run of small-retried")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_contain_text("Failed", timeout=60_000)
    expect(page.get_by_role("alert")).to_contain_text("s3.")
    retry = page.get_by_role("status").filter(has_text="wharf tries again")
    expect(retry).to_be_visible()
    look(page, "run-failed-retrying-desktop")
    assert gate.dropped > 0, "the endpoint was never called"

    # The endpoint comes back; the retries follow each other until one delivers.
    gate.open.set()
    for _ in range(6):
        if "Succeeded" in page.locator(".page-head .badge").inner_text():
            break
        expect(page.get_by_role("status").filter(has_text="wharf tries again")).to_be_visible(timeout=60_000)
        page.get_by_role("status").filter(has_text="wharf tries again").get_by_role("link").click()
        expect(page.locator(".page-head .badge")).not_to_contain_text("Queued", timeout=60_000)
        expect(page.locator(".page-head .badge")).not_to_contain_text("Running", timeout=60_000)
    expect(page.locator(".page-head .badge")).to_contain_text("Succeeded")
    meta = page.locator(".page-head .meta")
    expect(meta).to_contain_text("retry")

    # The attempts of the run: the first failed, this one succeeded, each linked.
    attempts = page.locator("ol.attempts > li")
    count = attempts.count()
    assert count >= 2, count
    expect(attempts.first).to_contain_text("Attempt 1")
    expect(attempts.first).to_contain_text("Failed")
    expect(attempts.last).to_contain_text("(this one)")
    expect(attempts.last).to_contain_text("Succeeded")
    files = page.locator("section[aria-labelledby=files-heading] tbody tr")
    expect(files).to_have_count(1)
    key = files.first.locator("code").first.inner_text()
    look(page, "run-retried-desktop")
    phone.goto(page.url)
    look(phone, "run-retried-phone")

    # Delivered once, whole: the rows read back by Python's csv module.
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="flaky/").get("Contents", []))
    assert listed == sorted([key, key.rsplit("/", 1)[0] + "/_manifest.json"]), listed
    assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix="flaky/").get("Uploads")
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert sorted(int(r["id"]) for r in rows) == list(range(1, SMALL_ROWS + 1))
