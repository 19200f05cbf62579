"""The browser side of security, in Chromium against the real app: hostile free text (version,
registrant, owner, descriptions, segment) shows as text on every page, with no link to and no
image from its host; neither the browser nor the app process reaches anything beyond
localhost (no external-IP lookup, no remote favicon or fonts); the server listens on
127.0.0.1 by default (.streamlit/config.toml)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest

from lifecycle.markdown import WORD_JOINER
from tests.browser import CHROMIUM, running_app, screenshot, wait_until_idle
from tests.hostile import HOST, HOSTILE, hostile_database

pytestmark = pytest.mark.browser

# Loaded by the app's Python (PYTHONPATH) before Streamlit: records, then refuses, every name
# lookup and connection that is not to the loopback interface.
NETWORK_GUARD = """
import ipaddress, json, os, socket

_LOG = os.environ["NETWORK_GUARD_LOG"]
_real_getaddrinfo, _real_connect, _real_connect_ex = (
    socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex)


def _local(host):
    if host in (None, "", "localhost", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(kind, target):
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"kind": kind, "target": repr(target)}) + "\\n")
    raise OSError(f"network guard: {kind} to {target!r} refused in this test")


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if not _local(host):
        _refuse("lookup", host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse("connect", address)


def connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = (
    getaddrinfo, connect, connect_ex)
"""

PAGES = [
    "",
    "registry",
    f"version?model=toy&version={quote(HOSTILE['version'])}",
    "model_health?model=toy&tab=Business",
    "drift?model=toy",
    "alerts",
    "weekly_review",
    "audit",
]


@pytest.fixture
def guarded_env(tmp_path) -> tuple[dict[str, str], Path]:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(textwrap.dedent(NETWORK_GUARD), encoding="utf-8")
    log = tmp_path / "network.log"
    log.touch()
    return {"PYTHONPATH": str(guard), "NETWORK_GUARD_LOG": str(log)}, log


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_hostile_text_renders_as_text_and_nothing_leaves_localhost(tmp_path, guarded_env):
    from playwright.sync_api import sync_playwright

    env, network_log = guarded_env
    db = hostile_database(tmp_path)
    with running_app(db, env, address=None) as url, sync_playwright() as p:
        port = urlparse(url).port
        # 127.0.0.1 in /proc's little-endian hex; nothing on 0.0.0.0 or ::
        assert _listening_addresses(port) == {"0100007F"}
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        for path in PAGES:
            page.goto(f"{url}/{path}")
            wait_until_idle(page, timeout_ms=180_000)
            page.wait_for_timeout(500)  # late images and fonts
            # links to the app itself may carry the hostile text in their query string
            links = [h for h in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
                     if urlparse(h).hostname == HOST]  # fmt: skip
            images = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
            images = [s for s in images if urlparse(s).hostname not in (None, "127.0.0.1")]
            if links or images:
                screenshot(page, f"security-{path.split('?')[0] or 'overview'}")
            assert (links, images) == ([], []), f"/{path}"
            if path.startswith("version"):  # the title and the metadata show the raw text
                shown = page.locator("[data-testid=stMain]").inner_text().replace(WORD_JOINER, "")
                assert f"toy {HOSTILE['version']}" in shown
                assert f"owner: {HOSTILE['owner']}" in shown
        favicon = page.evaluate("document.querySelector(\"link[rel='shortcut icon']\")?.href")
        browser.close()
    outside = [u for u in requested if urlparse(u).scheme not in ("data", "blob")
               and not u.startswith(url + "/")]  # fmt: skip
    assert not outside, outside
    assert favicon is None or not favicon.startswith("http") or favicon.startswith(url)
    records = [json.loads(line) for line in network_log.read_text().splitlines()]
    assert records == [], records  # e.g. checkip.amazonaws.com when no address is set
