"""The paint page in headless Chromium on a real film: how long a preview takes to come back after a stroke, and a
screenshot of the page in use (docs/paint.png).

    python benchmarks/paint_page.py FILM [--shot 2] [--strokes 5] [--colour red] [--screenshot docs/paint.png]

Starts `vidcolor paint FILM --no-browser` (default model, CPU), picks a shot from the film strip, picks a palette
colour and paints `--strokes` strokes one after another; for each, the seconds from releasing the mouse to the
re-coloured preview shown (the page's 0.25 s pause after a stroke included). Needs Debian's chromium and
chromium-driver and selenium (the test extra). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("film", type=Path)
    parser.add_argument("--shot", type=int, default=0, help="which shot of the strip to paint on (from 0)")
    parser.add_argument("--strokes", type=int, default=5)
    parser.add_argument("--colour", default="red", help="a palette colour's name")
    parser.add_argument("--stroke", action="append", default=[], metavar="COLOUR:X0,Y0,X1,Y1",
                        help="paint this stroke (a palette colour, ends as fractions of the frame) instead of "
                             "--strokes timed ones; repeatable, each timed")
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--window", default="1500,1050", help="the browser window's WIDTH,HEIGHT")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, "-m", "vidcolor", "paint", str(args.film), "--no-browser",
                                   "--device", args.device, "--hints-dir", str(Path(tmp) / "hints")],
                                  stdout=subprocess.PIPE, text=True)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (*FLAGS, f"--window-size={args.window}", f"--user-data-dir={tmp}/profile"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService("/usr/bin/chromedriver"))
        try:
            url = re.search(r"http://\S+", server.stdout.readline()).group(0)
            wait = WebDriverWait(driver, 300, poll_frequency=0.02)
            started = time.perf_counter()
            driver.get(url)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strip button")) > args.shot)
            driver.find_elements(By.CSS_SELECTOR, "#strip button")[args.shot].click()
            wait.until(lambda d: d.execute_script("const i = document.getElementById('colour-img');"
                                                  "return i.complete && i.naturalWidth > 0"))
            first_colour = time.perf_counter() - started
            canvas = driver.find_element(By.ID, "paint")
            w, h = canvas.rect["width"], canvas.rect["height"]
            strokes = [parse_stroke(s) for s in args.stroke] or [
                (args.colour, (0.2 + 0.12 * (i % 5), 0.35 + 0.07 * (i % 4), 0.25 + 0.12 * (i % 5), 0.39 + 0.07 * (i % 4)))
                for i in range(args.strokes)]
            times = []
            for colour, (x0, y0, x1, y1) in strokes:
                driver.find_element(By.CSS_SELECTOR, f"#palette button[title='{colour}']").click()
                seq = driver.execute_script("return Number(document.getElementById('preview').dataset.seq || 0)")
                ActionChains(driver).move_to_element_with_offset(canvas, (x0 - 0.5) * w, (y0 - 0.5) * h) \
                    .click_and_hold().move_by_offset((x1 - x0) * w, (y1 - y0) * h).release().perform()
                released = time.perf_counter()
                wait.until(lambda d: d.execute_script(
                    "const p = document.getElementById('preview');"
                    f"return p.dataset.state === 'ready' && Number(p.dataset.seq) > {seq}"))
                times.append(time.perf_counter() - released)
            if args.screenshot:
                driver.save_screenshot(str(args.screenshot))
        finally:
            driver.quit()
            server.send_signal(signal.SIGINT)
            server.wait(20)
    print(json.dumps({"film": args.film.name, "strokes": len(times), "preview_seconds_median": round(statistics.median(times), 2),
                      "preview_seconds": [round(t, 2) for t in times], "page_to_first_colour_seconds": round(first_colour, 2)}))


def parse_stroke(text: str) -> tuple[str, tuple[float, ...]]:
    colour, _, ends = text.rpartition(":")
    return colour, tuple(float(v) for v in ends.split(","))


if __name__ == "__main__":
    main()
