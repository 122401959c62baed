"""Shared fixtures: real-data location, a no-network guard, fixed seeds."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    """``$EMR_DATA_ROOT`` or the ``../shared/data`` folder beside the checkout."""
    return Path(os.environ.get("EMR_DATA_ROOT", REPO.parent / "shared" / "data"))


@pytest.fixture
def real_data() -> Path:
    root = real_data_root()
    if not (root / "bijie-224").is_dir():
        if os.environ.get("EMR_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"real data required (EMR_REQUIRE_REAL_DATA=1) but not found at {root}")
        pytest.skip(f"real data not found at {root}; set EMR_DATA_ROOT")
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails at once, as on an offline laptop."""

    def refuse(*args, **kwargs):
        raise OSError("network access blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by selenium through the system chromedriver (no driver download).

    Skipped where Chromium is absent, unless ``EMR_REQUIRE_BROWSER=1`` (CI installs it and sets that).
    """
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        message = "Chromium and chromedriver not found (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("EMR_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver of its own
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
