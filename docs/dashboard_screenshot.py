"""Screenshot of optuna-dashboard on a study, as in the README (docs/optuna-dashboard.png).

Starts ``optuna-dashboard`` on loopback against the study's storage, opens the study's page in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, through Selenium), waits for its charts and
saves the page:

    python docs/dashboard_screenshot.py sqlite:////tmp/bench-pruning/optuna/median.db docs/optuna-dashboard.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", help="the study's storage URL")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--study-id", type=int, default=1, help="the study's id in the storage (default 1)")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("optuna-dashboard")),
            args.storage,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100"):
        options.add_argument(argument)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/api/studies", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
        try:
            driver.get(f"{url}/dashboard/studies/{args.study_id}")
            WebDriverWait(driver, 60).until(lambda d: "History" in d.find_element("tag name", "body").text)
            time.sleep(3)  # the plots draw after their data arrives
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
