"""The rendered site: built from the executed quick notebooks, opened in headless Chromium."""

import json
import os
import re
from html.parser import HTMLParser

import nbformat
import pytest

from conftest import REPO
from emr_lib.workshop.site import build_site

EXECUTED = REPO / "build" / "notebooks" / "quick"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def _internal_targets(page):
    parser = _Links()
    parser.feed(page.read_text())
    for href in parser.hrefs:
        if re.match(r"^[a-z]+:", href) or href.startswith("#"):
            continue
        yield href, (page.parent / href.split("#")[0].split("?")[0]).resolve()


@pytest.fixture(scope="module")
def site():
    if not list(EXECUTED.glob("0*.ipynb")):
        if os.environ.get("CI"):
            pytest.fail(f"no executed notebooks in {EXECUTED}: the README's set-up command runs the pipeline first")
        pytest.skip(f"no executed notebooks in {EXECUTED}; run python -m emr_lib pipeline --profile quick")
    pytest.importorskip("myst_nb")
    return build_site("quick").parent


def test_site_has_a_home_page_and_a_page_per_notebook_with_its_figures(site):
    assert (site / "index.html").is_file() and (site / "architecture.html").is_file()
    for notebook in sorted(EXECUTED.glob("0*.ipynb")):
        page = site / "notebooks" / f"{notebook.stem}.html"
        figures = sum(
            "image/png" in o.get("data", {}) for c in nbformat.read(notebook, 4).cells for o in c.get("outputs", [])
        )
        shown = [src for src in re.findall(r'<img [^>]*src="([^"]+)"', page.read_text()) if not src.startswith("http")]
        assert len(shown) >= figures, f"{page.name}: {len(shown)} images for {figures} figures"
        for alt, src in re.findall(r'<img alt="([^"]*)" src="(\.\./_images/[^"]+)"', page.read_text()):
            assert alt and "_images" not in alt, f"{page.name}: a figure without alt text ({src})"
        assert all((page.parent / src).resolve().is_file() for src in shown)
    for page in site.rglob("*.html"):
        broken = [href for href, target in _internal_targets(page) if not target.exists()]
        assert not broken, f"{page.relative_to(site)} links to missing pages: {broken[:5]}"


def test_site_pages_load_in_chromium_with_every_image(site, browser):
    shots = REPO / "build" / "site-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = [site / "index.html", *sorted((site / "notebooks").glob("*.html"))]
    for page in pages:
        browser.get(page.as_uri())
        assert browser.title and "404" not in browser.title
        images = (
            browser.execute_script(  # the site's own images; the Colab badge is remote, and this machine is offline
                "return Array.from(document.images).filter(i => !/^https?:/.test(i.getAttribute('src')))"
                ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
            )
        )
        assert all(ok for _, ok in images), f"{page.name}: images not shown: {[s for s, ok in images if not ok]}"
        if page.stem in ("index", "04_training"):
            browser.save_screenshot(str(shots / f"{'home' if page.stem == 'index' else page.stem}.png"))
    assert (shots / "home.png").is_file() and (shots / "04_training.png").is_file()
    (shots / "pages.json").write_text(json.dumps([p.name for p in pages]))


def test_the_site_never_executes_a_notebook_and_names_the_command_for_each_missing_one(tmp_path, monkeypatch):
    pytest.importorskip("myst_nb")
    import shutil

    import emr_lib.workshop.pipeline

    for item in ("README.md", "pyproject.toml", "docs", "notebooks"):
        source = REPO / item
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, tmp_path / item)
    executed = tmp_path / "build" / "notebooks" / "quick"
    executed.mkdir(parents=True)
    shutil.copy2(REPO / "notebooks" / "01_data_exploration.ipynb", executed)  # one episode "executed"
    monkeypatch.setattr(emr_lib.workshop.pipeline, "run_pipeline", lambda *a, **k: pytest.fail("the site trained"))
    index = build_site("quick", root=tmp_path)
    page = re.sub(r"<[^>]+>", "", (index.parent / "notebooks" / "06_ablation.html").read_text())  # the text only
    assert "has not been executed" in page and "pipeline --profile quick --only 06" in page
    assert not (tmp_path / "runs").exists()
