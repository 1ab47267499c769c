"""Sources, models and segments, as a newcomer builds them: a folder of files, two models
previewed before saving, and a segment whose live count is checked against the rows counted
here, independently, with Python's csv module."""

import csv
import datetime
import io
import os
import pathlib

import pytest
from conftest import URL, expect, look
from playwright.sync_api import Page

WAREHOUSE = pathlib.Path(os.environ["WHARF_HOME"]) / "warehouse"

CUSTOMERS = """id,name,country,age,subscribed
1,Ada,FR,36,true
2,Bob,FR,28,true
3,Chloé,FR,41,false
4,Dan,BE,52,true
5,Émile,FR,33,true
6,Fatou,DE,30,true
7,Gus,FR,30,false
8,Hana,FR,,true
9,Ines,FR,64,true
10,Jo,"FR",45,true
"""

ORDERS = """order_id,customer_id,amount,ordered_on
100,1,20.5,2026-11-01
101,1,12.0,2026-11-20
102,2,99.9,2026-10-02
103,3,5.0,2026-09-09
104,3,7.5,2026-11-11
105,3,1.0,2026-11-12
106,5,50.0,2026-08-01
107,7,10.0,2026-11-30
108,7,11.0,2026-12-01
109,9,70.0,2026-12-02
110,4,3.0,2026-12-03
111,4,4.0,2026-12-04
"""


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def expected_counts():
    """The segment's count after each step, from the CSV text alone."""
    customers = rows(CUSTOMERS)
    orders = rows(ORDERS)
    fr = [c for c in customers if c["country"] == "FR"]
    fr_30 = [c for c in fr if c["age"] and int(c["age"]) >= 30]
    per_customer = {}
    for o in orders:
        per_customer[o["customer_id"]] = per_customer.get(o["customer_id"], 0) + 1
    fr_30_2orders = [c for c in fr_30 if per_customer.get(c["id"], 0) >= 2]
    return len(fr), len(fr_30), len(fr_30_2orders)


@pytest.fixture(scope="module", autouse=True)
def warehouse():
    WAREHOUSE.mkdir(parents=True, exist_ok=True)
    (WAREHOUSE / "customers.csv").write_text(CUSTOMERS)
    (WAREHOUSE / "orders.csv").write_text(ORDERS)


def write_model(page: Page, name: str, sql: str, key: str):
    page.goto(URL + "/models/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Source").select_option("shop")
    page.get_by_label("SQL").fill(sql)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("columns; the first")).to_be_visible()
    page.get_by_label("Primary key").select_option(key)
    return page


def test_a_source_two_models_and_a_segment_with_a_live_count(page: Page, phone: Page):
    # The empty states say what to do next.
    page.goto(URL + "/models")
    expect(page.get_by_role("link", name="Add a source first")).to_be_visible()
    look(page, "models-empty-desktop")

    page.goto(URL + "/sources")
    page.get_by_role("link", name="Add a source").first.click()
    look(page, "source-new-desktop")
    page.get_by_label("Name", exact=True).fill("shop")
    page.get_by_role("radio", name="Local folder").check()
    page.get_by_label("Folder", exact=True).fill(str(WAREHOUSE))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Source added.")).to_be_visible()
    look(page, "source-desktop")

    # A model whose SQL is wrong says where.
    page.goto(URL + "/models/new")
    page.get_by_label("SQL").fill("SELECT id, FROM customers WHERE")
    page.get_by_role("button", name="Preview").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The SQL does not run.")
    expect(alert).to_contain_text("line 1")
    look(page, "model-sql-error-desktop")

    write_model(page, "customers", "SELECT * FROM customers", "id")
    table = page.locator("#preview table")
    expect(table).to_contain_text("Chloé")
    expect(page.locator("#preview tbody tr")).to_have_count(10)
    look(page, "model-new-preview-desktop")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Model saved.")).to_be_visible()
    look(page, "model-desktop")
    phone.goto(URL + "/models/customers")
    look(phone, "model-phone")

    write_model(page, "orders", "SELECT * FROM orders", "order_id")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Model saved.")).to_be_visible()

    # The segment: FR, then 30 or older, then at least two orders. The count follows each edit.
    fr, fr_30, fr_30_2 = expected_counts()
    page.goto(URL + "/models/customers")
    page.get_by_role("link", name="Build a segment").click()
    expect(page.get_by_text("Type a value in each condition")).to_be_visible()
    count = page.locator("[data-count]")

    page.get_by_label("Column").first.select_option("country")
    # Operators follow the column's type: text has "contains", numbers do not.
    expect(page.get_by_label("Operator").first.locator("option", has_text="contains")).to_have_count(1)
    page.get_by_label("Value").first.fill("FR")
    expect(count).to_have_attribute("data-count", str(fr))

    page.get_by_role("button", name="+ Condition").click()
    page.get_by_label("Column").nth(1).select_option("age")
    expect(page.get_by_label("Operator").nth(1).locator("option", has_text="contains")).to_have_count(0)
    page.get_by_label("Operator").nth(1).select_option(">=")
    page.get_by_label("Value").nth(1).fill("30")
    expect(count).to_have_attribute("data-count", str(fr_30))

    page.get_by_role("button", name="+ Related rows").click()
    expect(page.get_by_label("Related model")).to_have_value("orders")
    # The join is guessed from the names: customers.id = orders.customer_id.
    expect(page.get_by_label("equals its")).to_have_value("customer_id")
    page.get_by_label("Test").select_option("count")
    page.get_by_label("Compared").select_option(">=")
    page.locator("[name='r.2.agg_value']").fill("2")
    expect(count).to_have_attribute("data-count", str(fr_30_2))
    page.get_by_text("Compiled SQL").click()
    expect(page.locator("#count pre")).to_contain_text("JOIN")
    look(page, "segment-new-desktop")

    page.get_by_label("Name", exact=True).fill("loyal-fr")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment saved.")).to_be_visible()
    expect(page.locator(".meta")).to_contain_text(f"{fr_30_2} rows match")
    look(page, "segment-desktop")
    phone.goto(URL + "/segments/loyal-fr")
    look(phone, "segment-phone")

    # A copy opens in the builder with the same tree, and the same count.
    page.get_by_role("link", name="Edit a copy").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("loyal-fr-copy")
    expect(page.locator("[data-count]")).to_have_attribute("data-count", str(fr_30_2))
    phone.goto(page.url)
    look(phone, "segment-new-phone")


def test_a_postgres_url_is_never_shown_back(page: Page):
    secret_url = "postgres://app:pw-Zq81-never-shown@127.0.0.1:1/none"
    page.goto(URL + "/sources/new")
    page.get_by_label("Name", exact=True).fill("pg-down")
    page.get_by_role("radio", name="PostgreSQL").check()
    page.get_by_label("Connection URL").fill(secret_url)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Connection URL")).to_have_value("")
    look(page, "source-error-desktop", "pw-Zq81-never-shown")
