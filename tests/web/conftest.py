"""Browser tests of the console: Playwright (Python) driving Debian's chromium, headless.

We never download Playwright's own browsers: the tests launch `/usr/bin/chromium`
(`scripts/ensure-services` installs it with apt-get). A missing chromium fails the tests
rather than skipping them, so CI cannot pass without having run them.

`console_server` is a real `neocloud demo` process on its own copy of the demo's data
directory. Building that directory takes a minute or more (usage history, invoices), so it
is built once into a template, under a file lock that every xdist worker of the run shares,
and kept in pytest's cache (.pytest_cache) keyed by the schema, the scenario and the day (the
demo's history ends today), so the next run starts in seconds. NEOCLOUD_DEMO_CACHE=0 builds
it afresh under the run's temporary directory instead.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import running

CHROMIUM = os.environ.get("NEOCLOUD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--mute-audio",
]
SRC = Path(__file__).resolve().parents[2] / "src" / "neocloud"
DEMO_START_TIMEOUT = 900  # building the demo on a busy 2-core machine


@dataclass(frozen=True)
class ConsoleServer:
    """A running demo: its base URL, an admin and a customer token, and the tenants."""

    url: str
    admin_token: str
    tenant_token: str
    tenant: str
    other_tenants: list[str]
    data_dir: Path

    def api(self, token: str | None = None) -> httpx.Client:
        """An API client (as the admin unless another token is given)."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=60,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives the browser carries the `browser` marker."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def _source_key() -> str:
    """What the demo's database depends on most: the schema (models and migrations), the
    scenario and its history, and the day. Not every service it goes through: a stale
    template after such a change is refreshed by NEOCLOUD_DEMO_CACHE=0 (CI starts without
    one), and keying on every file would rebuild it at every edit in a shared tree."""
    digest = hashlib.sha256(dt.datetime.now(dt.UTC).date().isoformat().encode())
    files = [
        *SRC.glob("*/models.py"),
        *SRC.glob("db/migrations/versions/*.py"),
        *SRC.glob("demo/*"),
        *SRC.glob("*/demo.py"),
        SRC / "cli" / "server.py",
    ]
    for path in sorted(p for p in files if p.is_file()):
        digest.update(str(path.relative_to(SRC)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _template_root(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    if os.environ.get("NEOCLOUD_DEMO_CACHE", "1") != "0" and cache is not None:
        return Path(cache.mkdir("neocloud-demo"))
    base = factory.getbasetemp()
    # Under xdist each worker's basetemp is popen-gwN inside the run's own directory.
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = run / "neocloud-demo"  # a folder of its own: older templates in it are removed
    root.mkdir(exist_ok=True)
    return root


def _build_template(target: Path) -> None:
    """Run `neocloud demo` on an empty directory until it serves, then stop it cleanly
    (SQLite checkpoints its WAL on close, so the directory is a complete copy)."""
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    args = ["demo", "--data-dir", str(building)]
    with running(args, env={"NEOCLOUD_DB_URL": ""}, timeout=DEMO_START_TIMEOUT):
        pass
    building.rename(target)


def _copy_of_the_demo(config: pytest.Config, factory: pytest.TempPathFactory, dest: Path) -> None:
    """Copy the demo's data directory to DEST, building it first if no run has yet (and
    removing older templates), all under one lock, so a template is never removed while
    another worker or run copies it."""
    root = _template_root(config, factory)
    key = _source_key()
    target = root / key
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (target / "tenant-token").exists():
                for old in root.iterdir():
                    if old.is_dir() and old.name != key:
                        shutil.rmtree(old, ignore_errors=True)
                _build_template(target)
            shutil.copytree(target, dest)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleServer]:
    """`neocloud demo` on this worker's own copy of the demo (tests may change its state:
    leave it as you found it where another test could notice)."""
    data_dir = tmp_path_factory.mktemp("console") / "demo"
    _copy_of_the_demo(request.config, tmp_path_factory, data_dir)
    args = ["demo", "--data-dir", str(data_dir)]
    with running(args, env={"NEOCLOUD_DB_URL": ""}, timeout=DEMO_START_TIMEOUT) as url:
        admin = (data_dir / "admin-token").read_text().strip()
        tenant_token = (data_dir / "tenant-token").read_text().strip()
        with httpx.Client(base_url=url, timeout=60) as client:
            me = client.get("/v1/me", headers={"Authorization": f"Bearer {tenant_token}"})
            me.raise_for_status()
            tenants = client.get(
                "/v1/tenants", params={"limit": 1000}, headers={"Authorization": f"Bearer {admin}"}
            )
            tenants.raise_for_status()
        tenant = me.json()["tenant"]
        others = sorted(t["name"] for t in tenants.json()["items"] if t["name"] != tenant)
        yield ConsoleServer(url, admin, tenant_token, tenant, others, data_dir)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium for the browser tests of this package.

    Package-scoped, not session-scoped: Playwright's sync API leaves its event loop marked
    as running on the thread, and the other tests of a worker call asyncio.run(); pytest
    closes it when a worker moves on to another package."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console's browser tests need Debian's chromium "
            "(bash scripts/ensure-services installs it)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def signed_in_page(browser: Any, server: ConsoleServer, token: str) -> Iterator[Any]:
    """A fresh context and page, signed in through the console's sign-in form, on the first
    view the token's role sees."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(server.url + "/")
    sign_in(page, token)
    page.wait_for_selector("main > .view, main > .error")
    yield page
    context.close()


def sign_in(page: Any, token: str) -> None:
    """Fill in the sign-in form and submit it."""
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def operator_page(browser: Any, console_server: ConsoleServer) -> Iterator[Any]:
    """Signed in as the demo's admin."""
    yield from signed_in_page(browser, console_server, console_server.admin_token)


@pytest.fixture
def tenant_page(browser: Any, console_server: ConsoleServer) -> Iterator[Any]:
    """Signed in as the demo's main customer (tenant-admin of `console_server.tenant`)."""
    yield from signed_in_page(browser, console_server, console_server.tenant_token)
