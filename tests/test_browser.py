"""The reader's first screen, in headless Chromium: ``reports/index.html`` and a tear sheet of a
small demo run show their verdict without scrolling (1280 x 800), every image loads, and
screenshots of both are left under the reports folder (``screenshots/``) for a reader."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory):
    """A small demo's stores and its report pipeline run, in a reports folder of their own."""
    from research.demo import REPLAY_DIR, run_demo
    from research.pipeline import load_market
    from research.runs import run_pipeline

    mp = pytest.MonkeyPatch()
    for var in ("PHANTOMLAB_REDIS_URL", "PHANTOMLAB_DATABASE_URL", "PHANTOMLAB_NAMESPACE"):
        mp.delenv(var, raising=False)
    try:
        workdir = tmp_path_factory.mktemp("demo")
        key = tmp_path_factory.mktemp("workspace") / "signing_key"
        run_demo(
            load_market(n_bars=4000, seed=3),
            workdir=workdir,
            retrain_every=200,
            progress=False,
            key_path=key,
        )
        reports = tmp_path_factory.mktemp("reports")
        params = {
            "database_url": f"sqlite:///{workdir / 'audit.db'}",
            "state_url": f"sqlite:///{workdir / 'state.db'}",
            "replay_dir": str(workdir / REPLAY_DIR),
            "gate_permutations": 50,
            "permutation": False,
            "n_boot": 200,
        }
        result = run_pipeline("report", params, reports_dir=reports, timeout_sec=600)
    finally:
        mp.undo()
    assert result.ok, result.error
    return result, reports


def _look(page, url: str, shot: Path) -> dict:
    """Open ``url``; where the verdict sits, which images loaded; save a first-screen shot."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_load_state("load")
    box = page.locator("#verdict, table.runs").first.bounding_box()
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))  # the first screen: what a reader sees before scrolling
    page.screenshot(path=str(shot.with_name(f"{shot.stem}_full.png")), full_page=True)
    return {"box": box, "images": images, "problems": problems, "text": page.inner_text("body")}


def _within_first_screen(box: dict | None) -> bool:
    return (
        box is not None
        and box["y"] >= 0
        and box["y"] + min(box["height"], 120) <= VIEWPORT["height"]
        and box["x"] + box["width"] <= VIEWPORT["width"]
    )


def test_index_and_tear_sheet_answer_on_the_first_screen(demo_reports):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), (
        "Debian's chromium is needed for this test. Fix: apt-get install chromium "
        "chromium-driver (.ci/run does this)."
    )
    result, reports = demo_reports
    shots = reports / "screenshots"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            index = _look(
                browser.new_page(viewport=VIEWPORT),
                (reports / "index.html").resolve().as_uri(),
                shots / "index.png",
            )
            sheet = _look(
                browser.new_page(viewport=VIEWPORT),
                result.html.resolve().as_uri(),
                shots / "tearsheet.png",
            )
        finally:
            browser.close()
    assert not index["problems"] and not sheet["problems"], (index["problems"], sheet["problems"])

    # the index: the run's row says its verdict, on the first screen
    assert _within_first_screen(index["box"]), index["box"]
    assert result.run_id in index["text"] and "Verdict:" in index["text"]
    first_row = index["text"].split(result.run_id, 1)[1][:400]
    assert "Verdict:" in first_row and "skill gross" in first_row, first_row

    # the tear sheet: the verdict box, with its interval and basis, before any scrolling
    assert _within_first_screen(sheet["box"]), sheet["box"]
    assert sheet["box"]["y"] + sheet["box"]["height"] <= VIEWPORT["height"], (
        "the whole verdict box fits the first screen"
    )
    text = sheet["text"]
    assert text.index("Verdict:") < text.index("Phantom Lab · period tear sheet")
    assert "R gross" in text[: text.index("Phantom Lab · period tear sheet")]
    # the parameters are folded away at the bottom: their values are not on the page's text
    assert "Parameters (" in text and "gate_permutations" not in text
    # every image loaded
    images = sheet["images"]
    assert len(images) >= 8, images
    assert all(done and width > 0 for done, width in images), images
    for name in ("index.png", "tearsheet.png", "index_full.png", "tearsheet_full.png"):
        assert (shots / name).stat().st_size > 10_000, name
    # no warning lines: none in the page, none from ipykernel in the run's log
    assert "Warning" not in text, "a warning reached the tear sheet"
    assert "without encryption" not in (result.run_dir / "runner.log").read_text(encoding="utf-8")
