"""The web page in a real headless browser (Debian's chromium + chromedriver through Selenium; `.ci/run`
installs them). One server, one browser: an example scene submitted through the Python client runs to
100 % with its thumbnails; a second, slow job is reloaded mid-run (its events resume by seq, no gap)
and cancelled from the page. With CELGRAPH_WEB_SCREENSHOT=docs/web.png the page is saved there."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from celgraph.service.client import Client
from celgraph.service.server import GraphServer
from celgraph.service.web import WebServer

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def _skip_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not CHROMIUM or not DRIVER:
        return ("NO BROWSER: chromium and chromedriver are not on PATH (apt-get install -y chromium "
                "chromium-driver; .ci/run does this as root) — the page was NOT tested in a browser")
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _skip_reason()
    if reason:
        print(f"\n*** {reason} ***")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1440,1100", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, js: str, timeout: float = 60.0, what: str = ""):
    """Poll a JS expression until it is truthy; return its value (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + js)
        if value:
            return value
        if time.monotonic() > deadline:
            state = driver.execute_script("return JSON.stringify({job: cgState.job, last: cgState.lastSeq, "
                                          "gaps: cgState.gaps, record: cgState.record && cgState.record.state})")
            raise AssertionError(f"timed out waiting for {what or js}; page: {state}")
        time.sleep(0.05)


def page_events(driver) -> list[dict]:
    return driver.execute_script("return cgState.events.map(e => ({seq: e.seq, kind: e.kind, node: e.node || null, "
                                 "frame: e.frame === undefined ? null : e.frame}))")


def watch_events(client, job) -> list[dict]:
    return [{"seq": e["seq"], "kind": e["kind"], "node": e.get("node"), "frame": e.get("frame")}
            for e in client.watch(job, timeout=60)]


def test_page_progress_thumbnails_graph_cancel_and_resume(browser, tmp_path):
    d = browser
    with GraphServer(port=0, cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", base_dir=tmp_path,
                     max_jobs=1) as g, WebServer(g, port=0) as w, Client(g.address) as c:
        d.get(w.url)
        wait_for(d, "document.getElementById('no-jobs').hidden === false", what="the empty queue")

        # ---- an example scene through the Python client: progress to 100 %, thumbnails ----
        scene = json.loads((ROOT / "examples" / "quickstart.json").read_text())
        job = c.submit(scene, frames="1-2", base_dir=str(tmp_path), label="quickstart")
        wait_for(d, f"document.querySelector('#jobs li[data-id=\"{job}\"]')", what="the job in the queue")
        d.find_element("css selector", f'#jobs li[data-id="{job}"]').click()
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen.append(int(d.find_element("id", "job-progress").get_attribute("data-value")))
            if seen[-1] == 100:
                break
            time.sleep(0.05)
        assert seen[-1] == 100, seen
        assert seen == sorted(seen)                                   # the bar only moves forward
        assert d.find_element("id", "job-progress-text").text == "100 %"
        wait_for(d, "document.getElementById('job-state').textContent === 'succeeded'", what="succeeded")
        # thumbnails: the 4 written files and the flow preview at frame 1, each a decoded image
        wait_for(d, "[...document.querySelectorAll('#pictures figure img')].filter("
                    "i => i.complete && i.naturalWidth > 0).length >= 5", what="5 loaded thumbnails")
        kinds = d.execute_script("return [...document.querySelectorAll('#pictures figure')].map(f => f.dataset.key)")
        assert {"write_color.file@1:file", "write_lines.file@1:file", "write_flow.file@1:file",
                "write_preview.file@1:file", "flow.preview@1:preview"} <= set(kinds)
        width = d.execute_script("return document.querySelector('#pictures figure img').naturalWidth")
        assert width <= 192                                           # downsampled on the server (456 px)
        # the frame slider moves the pictures to frame 2
        d.execute_script("const s = document.getElementById('frame'); s.value = 1; s.dispatchEvent(new Event('input'))")
        wait_for(d, "[...document.querySelectorAll('#pictures figure')].every(f => f.dataset.key.includes('@2:'))"
                    " && document.querySelectorAll('#pictures figure').length >= 5", what="frame 2 pictures")
        assert "frame 2" in d.find_element("id", "frame-label").text
        # the graph: every node drawn, laid out, coloured by state; a click shows params and outputs
        states = d.execute_script("return Object.fromEntries([...document.querySelectorAll('#graph g.node')]"
                                  ".map(n => [n.dataset.node, n.dataset.state]))")
        assert set(states) == set(scene["nodes"]) and set(states.values()) <= {"done", "cached"}
        assert d.execute_script("return document.querySelectorAll('#graph path.link').length") == 5
        d.execute_script("document.querySelector('#graph g.node[data-node=\"flow\"]')"
                         ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
        wait_for(d, "document.querySelector('#node-panel img') && document.querySelector('#node-panel img').naturalWidth > 0",
                 what="the flow node's output thumbnails")
        panel = d.find_element("id", "node-panel").text
        assert "celgraph.FlowRAFT" in panel and "backend" in panel and "preview (Image)" in panel
        # the page's events are WatchJob's
        assert page_events(d) == watch_events(c, job)

        # ---- a second job: reload mid-run, the events resume by seq; then Cancel on the page ----
        slow = {"celgraph": 1, "frames": "1-400", "nodes": {          # ~100 s: cancelled long before
            "src": {"type": "test.Source"},
            "slow": {"type": "test.Slow", "inputs": {"image": "src.image"}, "params": {"seconds": 0.25}}}}
        job2 = c.submit(slow, workers=1, label="slow one")
        d.get(w.url + "#" + job2)
        wait_for(d, f"cgState.job === '{job2}' && cgState.lastSeq >= 12", what="a dozen events of job 2")
        d.refresh()
        wait_for(d, f"cgState.job === '{job2}' && cgState.resumedFrom > 0 && cgState.lastSeq > cgState.resumedFrom + 3",
                 what="events after the reload")
        resumed = d.execute_script("return cgState.resumedFrom")
        seqs = [e["seq"] for e in page_events(d)]
        assert seqs == list(range(1, len(seqs) + 1)) and d.execute_script("return cgState.gaps") == 0
        assert c.job(job2)["state"] == "running"                      # it was reloaded mid-job
        d.find_element("id", "cancel").click()
        wait_for(d, "document.getElementById('job-state').textContent === 'cancelled'", what="cancelled")
        wait_for(d, "cgState.events.length && cgState.events[cgState.events.length - 1].kind === 'job_finished'",
                 what="the final event")
        assert c.job(job2)["state"] == "cancelled"
        assert page_events(d) == watch_events(c, job2)                # no gap, nothing twice, across the reload
        assert 0 < resumed < len(seqs)
        assert d.find_element("id", "cancel").get_attribute("hidden") is not None

        # ---- failure message on the page, then the screenshot of the first job ----
        bad = {"celgraph": 1, "frames": "1-3", "nodes": {
            "src": {"type": "test.Source"},
            "bad": {"type": "test.FailOn", "inputs": {"image": "src.image"}, "params": {"frame": 2}}}}
        job3 = c.submit(bad, workers=1, label="fails at frame 2")
        c.wait(job3, timeout=60)
        d.get(w.url + "#" + job3)
        wait_for(d, "!document.getElementById('job-error').hidden && "
                    "document.getElementById('job-title').textContent.startsWith('fails at frame 2')",
                 what="the error box")
        err = d.find_element("id", "job-error").text
        assert "node bad" in err and "type test.FailOn" in err and "frame 2" in err and "synthetic failure" in err
        wait_for(d, "document.querySelector('#graph g.node[data-node=\"bad\"]') && "
                    "document.querySelector('#graph g.node[data-node=\"bad\"]').dataset.state === 'failed'",
                 what="the failed node drawn red")

        # the node catalogue, from the descriptors
        d.find_element("id", "tab-nodes").click()
        wait_for(d, "document.querySelectorAll('#catalogue details').length > 0", what="the catalogue")
        ids = d.execute_script("return [...document.querySelectorAll('#catalogue details')].map(x => x.dataset.type)")
        assert sorted(ids) == sorted(t.id for t in g.engine.registry.all())
        assert not d.find_element("id", "jobs-view").is_displayed()      # one tab at a time
        d.find_element("id", "tab-jobs").click()
        assert d.find_element("id", "jobs-view").is_displayed() and not d.find_element("id", "nodes-view").is_displayed()

        shot = os.environ.get("CELGRAPH_WEB_SCREENSHOT")
        if shot:
            d.get(w.url + "#" + job)
            wait_for(d, "[...document.querySelectorAll('#pictures figure img')].filter("
                        "i => i.complete && i.naturalWidth > 0).length >= 5", what="thumbnails for the screenshot")
            d.execute_script("document.querySelector('#graph g.node[data-node=\"flow\"]')"
                             ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
            wait_for(d, "document.querySelector('#node-panel img') && document.querySelector('#node-panel img').naturalWidth > 0")
            time.sleep(0.5)
            d.save_screenshot(str(Path(shot).resolve()))
