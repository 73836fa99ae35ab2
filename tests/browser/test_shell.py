"""The PWA's files themselves: the offline shell is complete, small, and the manifest is sound."""

from __future__ import annotations

import gzip
import json
import posixpath
import re
import struct
from pathlib import Path

PWA = Path(__file__).resolve().parents[2] / "pwa"
SHELL_LIMIT = 100 * 1024  # first load, compressed, icons aside


def shell_files() -> list[str]:
    """The URLs the service worker caches for offline use (its SHELL list)."""
    sw = (PWA / "sw.js").read_text()
    listing = re.search(r"const SHELL = \[(.*?)\];", sw, re.S)
    assert listing, "sw.js has no SHELL list"
    return re.findall(r"'([^']+)'", listing.group(1))


def local_path(url: str) -> Path:
    return PWA / ("index.html" if url == "/" else url.lstrip("/"))


def test_every_module_the_app_imports_is_cached_for_offline_use():
    cached = set(shell_files())
    for url in cached:
        assert local_path(url).is_file(), f"{url} is in the SHELL list but not in pwa/"
    # Every script, style and module reachable from index.html must be cached, or the app
    # breaks offline on the first screen that needs the missing file.
    reachable, todo = set(), ["/"]
    while todo:
        url = todo.pop()
        if url in reachable:
            continue
        reachable.add(url)
        if not url.endswith((".js", ".html", "/")):
            continue
        text = local_path(url).read_text()
        if url.endswith(".js"):
            base = url.rsplit("/", 1)[0]
            for rel in re.findall(r"^\s*import\s+(?:[^'\"]+from\s+)?['\"]([^'\"]+)['\"]", text, re.M):
                todo.append(posixpath.normpath(posixpath.join(base, rel)))
        else:
            todo += re.findall(r'(?:src|href)="(/[^"#?]+\.(?:js|css|webmanifest|png))"', text)
    missing = sorted(u for u in reachable if u not in cached)
    assert missing == [], f"not cached for offline use: {missing}"
    assert "/sw.js" not in cached  # the worker itself is fetched by the browser, never cached


def test_the_shell_is_at_most_100_kb_compressed():
    total = sum(
        len(gzip.compress(local_path(u).read_bytes(), 9)) for u in shell_files() if not u.endswith(".png")
    )
    total += len(gzip.compress((PWA / "sw.js").read_bytes(), 9))
    assert total <= SHELL_LIMIT, f"app shell is {total} bytes gzip"


def test_no_file_of_the_app_refers_to_another_origin():
    allowed = {"https://www.113.nl"}  # a link the patient may tap, never fetched by the app
    for path in [*PWA.rglob("*.js"), *PWA.rglob("*.html"), *PWA.rglob("*.css")]:
        for url in re.findall(r"https?://[^\s'\"`)]+", path.read_text()):
            if url.startswith("http://www.w3.org/2000/svg"):
                continue  # the SVG namespace name, not a request
            assert url in allowed, f"{path.name} refers to {url}"


def test_manifest_installs_with_maskable_icons_of_the_right_size():
    manifest = json.loads((PWA / "manifest.webmanifest").read_text())
    assert manifest["lang"] == "nl" and manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"] and manifest["start_url"].startswith("/")
    assert manifest["theme_color"] and manifest["background_color"]
    sizes = set()
    for icon in manifest["icons"]:
        data = (PWA / icon["src"].lstrip("/")).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert icon["sizes"] == f"{width}x{height}"
        sizes.add((width, icon["purpose"]))
    assert {(192, "maskable"), (512, "maskable"), (192, "any"), (512, "any")} <= sizes


def test_dutch_and_english_have_the_same_messages():
    def keys(lang: str) -> set[str]:
        text = (PWA / "js" / "i18n" / f"{lang}.js").read_text()
        return set(re.findall(r"^\s+(\w+):", text, re.M))

    nl, en = keys("nl"), keys("en")
    assert nl == en and len(nl) > 100
    used = set()
    for path in (PWA / "js").rglob("*.js"):
        used |= set(re.findall(r"\bt\('(\w+)'", path.read_text()))
    assert used - nl == set(), "messages used but not written"
