"""`vidcolor paint`: the page's server (token, loopback only, no path from a request), the hints folder it writes
and `run --hints-dir` reading it, and the whole page driven in a real headless Chromium: pick a shot, paint a
stroke, see the preview change colour there, save, and `run` gives that colour in that region of that frame.

With the neutral model (ab = 0 exactly) every colour in a picture or an output comes from the hints."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
from click.testing import CliRunner
from test_hints import H, W, halves, stroke, write_gray_video

from vidcolor.cli import cli
from vidcolor.hintfolder import INDEX_NAME, HintFolder
from vidcolor.paint.server import PaintServer
from vidcolor.paint.session import PaintSession
from vidcolor.pipeline import Colorizer

CUT = 12  # the film's second shot starts here: its halves swap brightness


@pytest.fixture(scope="module")
def neutral(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "neutral.pt", ab=(0.0, 0.0))


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("film")
    return write_gray_video(folder / "film.mp4", [halves()] * CUT + [halves(190, 70)] * CUT)


@pytest.fixture
def server(film, neutral, tmp_path):
    session = PaintSession(film, Colorizer(model=neutral, device="cpu"), HintFolder(tmp_path / "hints", film.name))
    session.start_scan().join(60)
    with PaintServer(session) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield server
        server.shutdown()


def ask(server: PaintServer, path: str, method: str = "GET", body: bytes | None = None,
        token: bool = True, host: str | None = None) -> tuple[int, bytes]:
    """One request with exactly this path (nothing normalised), the token appended unless `token` is False."""
    if token:
        path += ("&" if "?" in path else "?") + f"token={server.token}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def png(rgba: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))[1].tobytes()


def jpeg_rgb(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].astype(int)


def files_under(*folders: Path) -> set[Path]:
    return {p for folder in folders for p in folder.rglob("*")}


RED_LEFT = stroke(W, H, (20, 60, 60, 100))  # a red rectangle in the left half


# -- the server --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/static/paint.js", "/api/film", "/api/frame?n=0&kind=gray", "/api/thumb?shot=0",
                                  "/api/hints"])
def test_every_request_needs_the_token(server, path):
    assert ask(server, path)[0] == 200
    assert ask(server, path, token=False)[0] == 403
    wrong = server.token[:-1] + ("y" if server.token.endswith("x") else "x")
    assert ask(server, path + ("&" if "?" in path else "?") + "token=" + wrong, token=False)[0] == 403


def test_a_write_without_the_token_writes_nothing(server, tmp_path):
    status, _ = ask(server, "/api/hints?n=3", "POST", png(RED_LEFT), token=False)
    assert status == 403 and not (tmp_path / "hints").exists()


@pytest.mark.parametrize("path,method", [
    ("/static/../../../../etc/passwd", "GET"),
    ("/static/..%2f..%2f..%2fetc%2fpasswd", "GET"),
    ("/../../etc/passwd", "GET"),
    ("/api/frame?n=../../etc/passwd&kind=gray", "GET"),
    ("/api/frame?n=0&kind=../../../etc/passwd", "GET"),
    ("/api/hint?n=..%2F" + INDEX_NAME, "GET"),
    ("/api/hint?n=/etc/passwd", "GET"),
    ("/api/hints?n=3/../../../x", "POST"),
    ("/api/hints?n=..%2F..%2Fx", "POST"),
    ("/api/hints?n=3&n=4", "POST"),
    ("/api/preview?n=-1", "POST"),
    ("/api/hints?n=99999", "POST"),  # past the film's end
])
def test_paths_from_a_request_are_refused(server, film, tmp_path, path, method):
    before = files_under(tmp_path, film.parent)
    status, body = ask(server, path, method, png(RED_LEFT) if method == "POST" else None)
    assert status in (400, 404) and b"root:" not in body
    assert files_under(tmp_path, film.parent) == before


def test_the_server_listens_on_loopback_only(server):
    listening = [c for c in psutil.Process().net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port]
    assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
    with pytest.raises(ConnectionRefusedError):  # another address of this machine's loopback
        http.client.HTTPConnection("127.0.0.2", server.port, timeout=5).connect()
    assert ask(server, "/api/film", host=f"attacker.example:{server.port}")[0] == 403  # DNS rebinding


def test_the_film_its_shots_and_frames(server):
    film = json.loads(ask(server, "/api/film")[1])
    assert film["frames"] == 2 * CUT and [s["frame"] for s in film["shots"]] == [0, CUT]
    assert "/" not in film["film"] and film["command"].endswith("--hints-dir " + str(server.session.folder.folder))
    gray = jpeg_rgb(ask(server, f"/api/frame?n={CUT + 1}&kind=gray")[1])
    assert gray.shape == (H, W, 3) and gray[:, : W // 2].mean() > gray[:, W // 2:].mean() + 60  # the second shot
    assert ask(server, f"/api/frame?n={2 * CUT}&kind=gray")[0] == 400  # one past the end


def test_a_preview_colours_where_the_hints_are(server):
    status, data = ask(server, "/api/preview?n=3", "POST", png(RED_LEFT))
    assert status == 200
    rgb = jpeg_rgb(data)
    left, right = rgb[:, : W // 2 - 10], rgb[:, W // 2 + 10:]
    assert (left[..., 0] - left[..., 1]).mean() > 30  # red across the stroke's region, not only under it
    assert np.abs(right[..., 0] - right[..., 1]).mean() < 4  # the other region keeps the model's (gray)


def test_a_bad_hint_is_refused_in_one_line_and_nothing_saved(server, tmp_path):
    status, body = ask(server, "/api/hints?n=3", "POST", png(np.zeros((H, W, 4), np.uint8)))
    assert status == 400 and b"no hinted pixels" in body and b"\n" not in body
    status, body = ask(server, "/api/hints?n=3", "POST", png(stroke(W, W, (0, 0, 20, 20))))
    assert status == 400 and b"aspect" in body
    assert not (tmp_path / "hints").exists()


def test_saved_hints_colour_run_and_can_be_removed(server, film, neutral, tmp_path, read_video):
    assert ask(server, "/api/hints?n=3", "POST", png(RED_LEFT))[0] == 200
    assert ask(server, "/api/hints?n=20", "POST", png(stroke(W, H, (200, 60, 260, 100), (40, 60, 200))))[0] == 200
    folder = tmp_path / "hints"
    index = json.loads((folder / INDEX_NAME).read_text())
    assert index["film"] == "film.mp4" and [h["frame"] for h in index["hints"]] == [3, 20]
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000003.png", "frame_000020.png", INDEX_NAME]
    assert ask(server, "/api/hint?n=3")[1] == (folder / "frame_000003.png").read_bytes()

    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["run", str(film), "-o", str(out), "--model", str(neutral), "--device", "cpu",
                                      "--hints-dir", str(folder), "--pix-fmt", "yuv444p"])
    assert result.exit_code == 0, result.output
    planes = read_video(out, planes=True).planes
    cr3, cb20 = planes[3][2].astype(float), planes[20][1].astype(float)
    assert cr3[:, : W // 2 - 10].mean() > 140 and abs(cr3[:, W // 2 + 10:].mean() - 128) < 2  # red left, first shot
    assert cb20[:, W // 2 + 10:].mean() > 140  # blue right, second shot
    assert abs(planes[CUT - 1][2].astype(float)[:, : W // 2 - 10].mean() - 128) > 8  # carried through the shot
    assert abs(planes[CUT][2].astype(float)[:, : W // 2 - 10].mean() - 128) < 3  # never past the cut

    assert json.loads(ask(server, "/api/hints?n=3", "DELETE")[1]) == {"removed": True}
    assert [h["frame"] for h in json.loads(ask(server, "/api/hints")[1])] == [20]
    assert not (folder / "frame_000003.png").exists()


def test_hints_dir_is_for_one_film(film, neutral, tmp_path):
    folder = tmp_path / "h"
    HintFolder(folder, "other.mp4").save(3, 0.125, png(RED_LEFT))
    result = CliRunner().invoke(cli, ["run", str(film), str(film), "--hints-dir", str(folder), "--model", str(neutral)])
    assert result.exit_code == 2 and "single input" in result.output
    result = CliRunner().invoke(cli, ["run", str(film), "--hints-dir", str(tmp_path / "none"), "--model", str(neutral)])
    assert result.exit_code != 0 and "hints folder not found" in result.output


# -- the page in a real browser ------------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


def chrome(profile: Path):
    """Headless Debian Chromium through its own ChromeDriver (nothing downloaded), or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("no Chromium browser: apt-get install chromium chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1500,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


PIXEL_JS = """
const img = document.getElementById(arguments[0]);
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(arguments[1], arguments[2], arguments[3], arguments[4]).data;
let r = 0, gr = 0, b = 0;
for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
const n = d.length / 4;
return [r / n, gr / n, b / n];
"""


@pytest.mark.slow
def test_paint_in_a_real_browser_then_run(film, neutral, tmp_path, read_video):
    shutil.copy(film, tmp_path / "film.mp4")
    movie = tmp_path / "film.mp4"
    server = subprocess.Popen([sys.executable, "-m", "vidcolor", "paint", str(movie), "--no-browser", "--model",
                               str(neutral), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", server.stdout.readline()).group(0)
        driver = chrome(tmp_path / "profile")
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(driver, 60)
        driver.get(url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strip button")) == 2)  # the film strip: 2 shots
        driver.find_elements(By.CSS_SELECTOR, "#strip button")[1].click()  # pick the second shot
        wait.until(lambda d: d.find_element(By.ID, "position").text.startswith(f"frame {CUT}"))
        wait.until(lambda d: d.execute_script("return document.getElementById('colour-img').complete "
                                              "&& document.getElementById('colour-img').naturalWidth > 0"))
        r, g, b = driver.execute_script(PIXEL_JS, "colour-img", 20, 60, 100, 60)
        assert abs(r - g) < 6 and abs(b - g) < 6  # the model's colours: gray

        driver.find_element(By.CSS_SELECTOR, "#palette button[title='red']").click()
        canvas = driver.find_element(By.ID, "paint")
        box = canvas.rect  # a stroke across the left quarter, on the page's own scale
        ActionChains(driver).move_to_element_with_offset(canvas, -box["width"] * 0.35, 0).click_and_hold() \
            .move_by_offset(box["width"] * 0.2, 0).move_by_offset(0, box["height"] * 0.1).release().perform()
        wait.until(lambda d: d.find_element(By.ID, "preview").get_attribute("data-state") == "ready")
        r, g, b = driver.execute_script(PIXEL_JS, "preview", 10, 20, 120, 140)  # left region, around the stroke
        assert r - g > 30, (r, g, b)
        r, g, b = driver.execute_script(PIXEL_JS, "preview", W // 2 + 20, 20, 120, 140)  # right region
        assert abs(r - g) < 6, (r, g, b)

        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: f"frame {CUT}" in d.find_element(By.ID, "hinted").text)
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "film_hints" / f"frame_{CUT:06d}.png").is_file()
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)  # Ctrl-C stops it cleanly
        rc = server.wait(20)
    assert rc == 0

    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["run", str(movie), "-o", str(out), "--model", str(neutral), "--device", "cpu",
                                      "--hints-dir", str(tmp_path / "film_hints"), "--pix-fmt", "yuv444p"])
    assert result.exit_code == 0, result.output
    planes = read_video(out, planes=True).planes[CUT]
    cr, cb = planes[2].astype(float), planes[1].astype(float)
    assert cr[20:160, 10:130].mean() > 140 and cb[20:160, 10:130].mean() < 125  # red in that region of that frame
    assert abs(cr[:, W // 2 + 20:].mean() - 128) < 3  # and not past the edge
