"""Take the README's dashboard screenshots in headless Chromium: `make screenshots`.

Builds a synthetic demo in a temporary TIMELINES_HOME (sample, ingest, USCIS's official
times from the labelled EXAMPLE file, a poll of the local sandbox emulator, refresh, publish;
no Prefect needed), serves the dashboard on a free port and saves docs/img/dashboard-*.png.
Uses Debian's /usr/bin/chromium through Playwright, never a downloaded browser.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.analytics.official import import_official, read_official  # noqa: E402
from pipeline.jobs import refresh as refresh_job  # noqa: E402
from pipeline.jobs.poll import run_poll  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.sources.uscis.client import ApiSettings, Secret  # noqa: E402
from pipeline.sources.uscis.emulator import EmulatorConfig, EmulatorServer, load_sandbox_receipts  # noqa: E402
from pipeline.sources.uscis.registry import Registry, registry_path  # noqa: E402
from pipeline.store.db import open_store  # noqa: E402
from tests.support.browser import (  # noqa: E402
    CHROMIUM,
    DESKTOP,
    PHONE,
    chromium,
    full_page_screenshot,
    open_view,
    serve_dashboard,
)
from tests.support.dashboard import publish_sample  # noqa: E402

EXAMPLE_OFFICIAL = REPO / "docs" / "examples" / "official-processing-times-example.json"
# the person: an I-485 at NBC filed 2025-09-15, biometrics done
ANSWER = "/my-case?form=I-485&office=NBC&received=2025-09-15&stage=biometrics"
OUT = REPO / "docs" / "img"
# file name -> (path, page title)
VIEWS = {
    "dashboard-overview.png": ("/", "How long do USCIS cases take?"),
    "dashboard-processing-times.png": ("/processing-times?form=I-485", "Processing times"),
    "dashboard-trends.png": ("/trends?form=I-130", "Trends"),
    "dashboard-official.png": ("/official?form=I-485", "Official vs community"),
    "dashboard-health.png": ("/health", "Pipeline health"),
    "dashboard-methodology.png": ("/methodology", "Methodology and privacy"),
    "dashboard-download.png": ("/download", "Download the open data"),
}


def build_demo(home: Path, cases: int) -> Settings:
    """A published synthetic demo with official times and a poll of the emulator."""
    settings = publish_sample(home, n_cases=cases, seed=1)
    with open_store(settings.database_path) as con:
        import_official(con, read_official(EXAMPLE_OFFICIAL))  # labelled EXAMPLE, as in the demo
    with Registry(registry_path(home)) as registry:
        registry.add(sorted(load_sandbox_receipts()), now=datetime.now())
    with EmulatorServer(EmulatorConfig(requests_per_second=50)) as server:
        api = ApiSettings(Secret("demo"), Secret("demo"), base_url=server.base_url,
                          requests_per_second=50)
        run_poll(settings, api, publish=False)
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    return settings


def take(base: str, out: Path) -> list[Path]:
    """Visit the views and save their screenshots; return the files written."""
    written = []
    with chromium() as browser:
        page = browser.new_context(viewport=DESKTOP).new_page()
        for name, (path, title) in VIEWS.items():
            open_view(page, base + path, title)
            full_page_screenshot(page, out / name)
            written.append(out / name)
        open_view(page, base + ANSWER, "My case")
        full_page_screenshot(page, out / "dashboard-my-case.png")
        written.append(out / "dashboard-my-case.png")
        phone = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
        tab = phone.new_page()
        open_view(tab, base + ANSWER, "My case")
        full_page_screenshot(tab, out / "dashboard-phone.png", max_height=1700)
        written.append(out / "dashboard-phone.png")
    return written


def main() -> None:
    """Build the demo, serve it and write the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: run scripts/install-browser.sh (Debian chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        build_demo(home, args.cases)
        with serve_dashboard(home) as base:
            for path in take(base, args.out):
                print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


if __name__ == "__main__":
    main()
