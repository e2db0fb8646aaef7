"""The annotation pages in real headless Chromium (Playwright, the system Chromium): log in, annotate a pairwise
item with the keyboard and with the mouse, an admin sees live agreement, adjudicates the disagreement and
exports. Screenshots are checked (real PNGs of a plausible size) beside the visible text, and an XSS payload in
the prompt, a response and a rationale stays text: no dialog opens and no injected script runs.

One server and one browser for the module; each test gets its own browser context (its own cookies)."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

PASSWORD = "browser-pass-1"
XSS_PROMPT = "Greet me <script>window.__xss='script';alert('xss')</script> please"
XSS_RESPONSE = "Hi! <img src=x onerror=\"window.__xss='img';alert('img')\">"
XSS_RATIONALE = "<svg onload=alert('svg')>because"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from alignline.annotate.store import FAST_KDF, Store
    from alignline.annotate.web.app import create_app
    from alignline.annotate.web.serve import ThreadedServer
    from support import CHROMIUM_ARGS, chromium_or_skip

    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('web') / 'b.db'}", kdf=FAST_KDF)
    for name, role in (("admin", "admin"), ("alice", "annotator"), ("bob", "annotator")):
        store.add_user(name, role, PASSWORD)
    rubric = {
        "instructions": "Prefer the answer that is correct, then the clearer one.",
        "criteria": [{"name": "helpfulness", "description": "answers what was asked", "scale": [1, 5]}],
    }
    store.create_project(
        "chat",
        [
            {"prompt": XSS_PROMPT, "responses": [XSS_RESPONSE, "Hello there."]},
            {"prompt": "What is 2+2?", "responses": ["4", "22"]},
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                ],
                "responses": ["Paris.", "Lyon, I think."],
            },
        ],
        rubric=rubric,
        assign=["alice", "bob"],
        min_annotations=2,
    )
    store.create_project("other", [{"prompt": "NOT FOR ALICE", "responses": ["x", "y"]}], assign=["bob"])
    with ThreadedServer(create_app(store)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield {"base": base, "browser": browser, "store": store}
        browser.close()


@pytest.fixture
def page(site):
    context = site["browser"].new_context(viewport={"width": 1200, "height": 800}, accept_downloads=True)
    p = context.new_page()
    p.dialogs = []
    p.on("dialog", lambda d: (p.dialogs.append(d.message), d.dismiss()))
    p.console_errors = []
    p.on("console", lambda m: p.console_errors.append(m.text) if m.type == "error" else None)
    yield p
    context.close()


def sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/projects")


def png_ok(path: Path, min_width: int = 600, min_height: int = 300) -> None:
    """A real PNG: the signature, an IHDR with the viewport's size, and more than a blank image's bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_width and height >= min_height, (width, height)
    assert 8_000 < len(data) < 3_000_000, len(data)


def save_for_readme(page, name: str) -> None:
    if os.environ.get("ALIGNLINE_SAVE_SCREENSHOTS"):  # `make` target or by hand: refresh the README's images
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / name))


def saved_item(page) -> int:
    return int(re.search(r"saved=(\d+)", page.url).group(1))


def test_annotate_with_keyboard_and_mouse_and_xss_stays_inert(site, page, tmp_path):
    base = site["base"]
    sign_in(page, base, "alice")
    assert page.locator("#projects").inner_text().count("chat") == 1
    assert "other" not in page.locator("main").inner_text()
    page.click("tr[data-project=chat] >> text=Annotate")
    page.wait_for_selector("#label-form")
    texts = []
    for _ in range(3):  # the XSS item is shown literally wherever it comes in the order
        texts.append(page.locator("main").inner_text())
        if "Greet me" in texts[-1]:
            break
        page.keyboard.press("t")
        page.wait_for_selector("#saved")
    main = texts[-1]
    assert "<script>window.__xss='script';alert('xss')</script>" in main
    assert "<img src=x onerror=" in main
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    page.screenshot(path=str(tmp_path / "annotate.png"))
    png_ok(tmp_path / "annotate.png")
    save_for_readme(page, "annotate-pairwise.png")
    # the keyboard: "1" prefers A (after a rationale with its own payload; keys are off while typing)
    url = page.url
    page.click("summary")
    page.fill("#rationale", XSS_RATIONALE)
    page.locator("#rationale").press_sequentially(" 1 2 t")  # typed keys stay text, they label nothing
    assert page.url == url
    page.locator("#rationale").blur()
    page.keyboard.press("1")
    page.wait_for_selector("#saved")
    first = saved_item(page)
    label = site["store"].item(first, site["store"].user("alice"))["label"]
    assert label["choice"] == 0 and label["rationale"].startswith(XSS_RATIONALE)
    # the mouse: click "B is better"
    if page.locator("#label-form").count():
        page.click("#choose-B")
        page.wait_for_url(re.compile(rf"saved=(?!{first}\b)\d+"))
        assert site["store"].item(saved_item(page), site["store"].user("alice"))["label"]["choice"] == 1
    assert page.dialogs == [] and page.evaluate("window.__xss") is None
    # another project's page is a 404, and it says nothing of that project's items
    response = page.goto(f"{base}/projects/other/annotate")
    assert response.status == 404 and "NOT FOR ALICE" not in page.content()
    assert "Not found" in page.locator("main").inner_text()


def test_admin_adjudicates_and_exports(site, page, tmp_path):
    base, store = site["base"], site["store"]
    admin = store.user("admin")
    # make a sure disagreement: alice prefers A on an item, bob B (directly through the store)
    alice, bob = store.user("alice"), store.user("bob")
    item = store.next_item("chat", bob)
    if store.item(item["id"], alice)["label"] is None:
        store.add_label(item["id"], alice, 0, rationale=XSS_RATIONALE)
    theirs = store.item(item["id"], alice)["label"]["choice"]
    store.add_label(item["id"], bob, 1 if theirs == 0 else 0, rationale=XSS_RATIONALE)
    assert any(d["id"] == item["id"] for d in store.disagreements("chat"))
    sign_in(page, base, "admin")
    page.click("tr[data-project=chat] >> text=Dashboard")
    page.wait_for_selector("#agreement")
    tiles = page.locator("#agreement").inner_text()
    assert "Cohen's kappa" in tiles and "Fleiss' kappa" in tiles and "Krippendorff's alpha" in tiles
    assert "alice" in page.locator("#annotators").inner_text()
    # the live refresh fetched the agreement API (a locator wait: the CSP rightly forbids Playwright's eval)
    page.locator("#refreshed", has_text="Updated").wait_for(timeout=8000)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    png_ok(tmp_path / "dashboard.png")
    save_for_readme(page, "annotate-dashboard.png")
    page.goto(f"{base}/projects/chat/adjudicate")
    card = page.locator(f"#item-{item['id']}")
    assert XSS_RATIONALE in card.inner_text() and page.dialogs == []
    page.screenshot(path=str(tmp_path / "adjudicate.png"), full_page=True)
    png_ok(tmp_path / "adjudicate.png")
    save_for_readme(page, "annotate-adjudicate.png")
    card.locator("button[data-resolve=A]").click()  # the mouse, on the resolve button
    page.wait_for_selector("#resolved")
    assert f"Item {item['id']} resolved" in page.locator("#resolved").inner_text()
    assert page.locator(f"#item-{item['id']}").count() == 0
    assert not any(d["id"] == item["id"] for d in store.disagreements("chat"))
    page.goto(f"{base}/projects/chat/dashboard")
    assert page.locator("[data-metric=adjudicated]").inner_text() == "1"
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / "export.jsonl"
    download.value.save_as(path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert download.value.suggested_filename == "chat.jsonl"
    assert any(r["prompt"] == store.item(item["id"], admin)["prompt"] for r in records)
    assert page.dialogs == [] and not page.console_errors, page.console_errors


def test_skip_with_the_s_key_and_no_error_from_other_keys(site, page):
    """`s` skips (the item goes to the back of bob's queue, recorded); a backslash, which app.js once spliced
    into a CSS selector (escaping its closing quote), and other unbound keys do nothing and raise nothing."""
    base, store = site["base"], site["store"]
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, base, "bob")
    page.goto(f"{base}/projects/chat/annotate")
    page.wait_for_selector("#skip")
    shown = int(re.search(r"/items/(\d+)/skip", page.locator("#skip").get_attribute("formaction")).group(1))
    url = page.url
    for key in ("\\", "]", '"', "x"):
        page.keyboard.press(key)
    # (a first page of a fresh browser may log its favicon's 404: not a script error)
    script_errors = [m for m in page.console_errors if not m.startswith("Failed to load resource")]
    assert page.url == url and errors == [] and script_errors == [], (errors, script_errors)
    page.keyboard.press("s")
    page.wait_for_selector("#skipped")
    assert page.url.endswith(f"skipped={shown}")
    assert any(k["user"] == "bob" and k["item_id"] == shown for k in store.skips("chat"))
    assert store.item(shown, store.user("bob"))["label"] is None  # skipped, not labelled
    if store.project("chat", store.user("bob"))["remaining"] > 1:  # another item comes first now
        assert f"/items/{shown}/skip" not in page.locator("#skip").get_attribute("formaction")
    assert errors == [] and page.dialogs == []
