"""A PostgreSQL source added in the browser against the test run's own cluster (scripts/pg,
WHARF_TEST_POSTGRES_URL): its URL written once and never shown back, a model previewed from
PostgreSQL, a wrong query's error from the server, a Parquet sync run from the UI, and the file
read back by pyarrow and compared with the rows psql itself prints."""

import csv
import decimal
import glob
import io
import os
import subprocess
import urllib.parse

import pyarrow.parquet as pq
import pytest
from conftest import URL, add_destination, expect, look
from playwright.sync_api import Page

PG_URL = os.environ["WHARF_TEST_POSTGRES_URL"]
PG_PASSWORD = urllib.parse.urlparse(PG_URL).password
BUCKET = os.environ["WHARF_S3_BUCKET"]
ROWS = 300
# Every row written by PostgreSQL itself: unicode, NULLs, exact decimals, timestamps.
TABLE = f"""
DROP TABLE IF EXISTS ui_customers;
CREATE TABLE ui_customers (
  id integer PRIMARY KEY,
  name text NOT NULL,
  country text,
  signed_up timestamptz NOT NULL,
  spend numeric(10, 2) NOT NULL,
  active boolean NOT NULL
);
INSERT INTO ui_customers
SELECT n,
       CASE n % 3 WHEN 0 THEN 'Zoë ' || n WHEN 1 THEN 'Αθηνά ' || n ELSE 'O''Brien, "' || n || '"' END,
       CASE WHEN n % 10 = 0 THEN NULL ELSE (ARRAY['FR', 'DE', 'JP'])[n % 3 + 1] END,
       timestamptz '2026-01-01 00:00:00+00' + n * interval '7 hours 13 minutes',
       n * 1.25,
       n % 4 <> 0
FROM generate_series(1, {ROWS}) AS n;
"""
MODEL_SQL = "SELECT id, name, country, signed_up, spend FROM ui_customers WHERE active"


def psql(sql: str) -> str:
    """PostgreSQL's own client: the source of truth these checks compare with."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    assert binaries, "psql is missing: scripts/pg installs PostgreSQL"
    out = subprocess.run(
        [binaries[-1], PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, env={**os.environ, "PGTZ": "UTC"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module", autouse=True)
def table():
    psql(TABLE)
    add_destination("pg-lake", "pg/")


def expected_rows():
    text = psql(
        "COPY (SELECT id, name, country, to_char(signed_up AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS') AS signed_up, spend FROM ui_customers WHERE active "
        "ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER, FORCE_QUOTE (country))"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    # FORCE_QUOTE tells an empty country ("") from a NULL one (unquoted, empty): none is empty.
    for row in rows:
        row["country"] = row["country"] or None
    return rows


def test_a_postgres_source_model_and_sync_built_in_the_browser(page: Page, phone: Page, s3):
    page.goto(URL + "/sources/new")
    page.get_by_label("Name", exact=True).fill("crm")
    page.get_by_role("radio", name="PostgreSQL").check()
    page.get_by_label("Connection URL").fill(PG_URL)
    page.get_by_label("TLS").select_option("require")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Source added.")).to_be_visible()
    where = page.locator("section[aria-labelledby=where-heading]")
    expect(where).to_contain_text("PostgreSQL")
    expect(where).to_contain_text("require")
    look(page, "source-postgres-desktop", PG_PASSWORD)
    phone.goto(page.url)
    look(phone, "source-postgres-phone", PG_PASSWORD)

    # A query PostgreSQL refuses says what PostgreSQL said.
    page.get_by_role("link", name="Write a model").click()
    expect(page.get_by_label("Source")).to_have_value("crm")
    page.get_by_label("SQL").fill("SELECT id, no_such_column FROM ui_customers")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("alert")).to_contain_text("no_such_column")
    look(page, "model-postgres-error-desktop", PG_PASSWORD)

    page.get_by_label("Name", exact=True).fill("crm-customers")
    page.get_by_label("SQL").fill(MODEL_SQL)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("columns; the first")).to_be_visible()
    expected = expected_rows()
    preview = page.locator("#preview table")
    expect(preview).to_contain_text(expected[0]["name"])
    page.get_by_label("Primary key").select_option("id")
    look(page, "model-postgres-preview-desktop", PG_PASSWORD)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Model saved.")).to_be_visible()

    page.get_by_role("link", name="Sync it").click()
    page.get_by_label("Name", exact=True).fill("crm-parquet")
    page.get_by_label("Destination").select_option("pg-lake")
    page.get_by_role("radio", name="Parquet").check()
    expect(page.locator("#sync-preview")).to_contain_text("crm-parquet")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Sync saved.")).to_be_visible()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".page-head .badge")).to_contain_text("Succeeded", timeout=60_000)
    files = page.locator("section[aria-labelledby=files-heading] tbody tr")
    expect(files).to_have_count(1)
    expect(files.first).to_contain_text(f"{len(expected):,}")
    key = files.first.locator("code").first.inner_text()
    look(page, "run-postgres-desktop", PG_PASSWORD)

    # pyarrow reads the file; every row and value is PostgreSQL's.
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == ["id", "name", "country", "signed_up", "spend"], table.schema
    got = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert len(got) == len(expected) == 225
    for row, want in zip(got, expected):
        assert row["id"] == int(want["id"])
        assert row["name"] == want["name"]
        assert row["country"] == want["country"]
        assert row["signed_up"].strftime("%Y-%m-%dT%H:%M:%S") == want["signed_up"]
        assert decimal.Decimal(str(row["spend"])) == decimal.Decimal(want["spend"])
