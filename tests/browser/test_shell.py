"""The PWA's files themselves: the offline shell is complete, small, and the manifest is sound."""

from __future__ import annotations

import gzip
import json
import posixpath
import re
import struct
import subprocess
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PWA = ROOT / "pwa"
LEXER = ROOT / "node_modules" / "es-module-lexer" / "package.json"
SHELL_LIMIT = 100 * 1024  # first load, compressed, icons aside


def module_graph(root: Path = PWA) -> dict[str, list[str]]:
    """Every module under root/js as its URL ('/js/main.js') and the URLs it imports, as
    es-module-lexer reads them (imports.mjs): static, re-exported and dynamic imports."""
    assert LEXER.is_file(), "es-module-lexer is not installed: run `make browser-deps`"
    files = sorted((root / "js").rglob("*.js"))
    run = subprocess.run(
        ["node", str(HERE / "imports.mjs"), *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    graph = {}
    for path, specifiers in json.loads(run.stdout).items():
        url = "/" + Path(path).relative_to(root).as_posix()
        assert None not in specifiers, f"{url}: a dynamic import whose name is not written out"
        for spec in specifiers:
            # No bundler and no import map: only a path the browser can fetch as it stands.
            assert spec.startswith(("./", "../", "/")), f"{url} imports {spec!r}, which no browser can load"
        graph[url] = [posixpath.normpath(posixpath.join(posixpath.dirname(url), s)) for s in specifiers]
    return graph


def import_circle(graph: dict[str, list[str]]) -> list[str] | None:
    """One circle of imports in the graph (its modules in order, the first again at the end)."""
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as circle:
        return list(reversed(circle.args[1]))
    return None


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
    modules = module_graph()
    reachable, todo = set(), ["/"]
    while todo:
        url = todo.pop()
        if url in reachable:
            continue
        reachable.add(url)
        if not url.endswith((".js", ".html", "/")):
            continue
        if url.endswith(".js"):
            todo += modules.get(url, [])
        else:
            todo += re.findall(
                r'(?:src|href)="(/[^"#?]+\.(?:js|css|webmanifest|png))"', local_path(url).read_text()
            )
    missing = sorted(u for u in reachable if u not in cached)
    assert missing == [], f"not cached for offline use: {missing}"
    assert "/sw.js" not in cached  # the worker itself is fetched by the browser, never cached
    # And no module lies unused: one that no page reaches is dead code.
    assert sorted(set(modules) - reachable) == []


def test_the_app_modules_import_no_circle():
    graph = module_graph()
    circle = import_circle(graph)
    assert circle is None, f"import circle: {' → '.join(circle)}"
    # The page starts at the router, and nothing imports it back: screens reach the state and
    # the server through state.js and api.js, and ask for a redraw through state.render().
    assert '<script type="module" src="/js/main.js">' in (PWA / "index.html").read_text()
    assert [url for url, imports in graph.items() if "/js/main.js" in imports] == []
    assert {"/js/state.js", "/js/api.js"} <= set(graph["/js/main.js"])
    assert "/js/api.js" not in graph["/js/state.js"]


def test_the_circle_check_finds_a_circle(tmp_path):
    # The check above is only worth something if it sees a circle where there is one.
    (tmp_path / "js" / "screens").mkdir(parents=True)
    (tmp_path / "js" / "main.js").write_text("import { a } from './screens/a.js';\nexport const m = 1;\n")
    (tmp_path / "js" / "screens" / "a.js").write_text(
        "import { b } from './b.js';\nexport const a = 1;\n// import './nothing.js' in a comment\n"
    )
    (tmp_path / "js" / "screens" / "b.js").write_text("export const b = () => import('../main.js');\n")
    graph = module_graph(tmp_path)
    assert graph["/js/screens/a.js"] == ["/js/screens/b.js"]
    circle = import_circle(graph)
    assert (
        circle
        and circle[0] == circle[-1]
        and set(circle) == {"/js/main.js", "/js/screens/a.js", "/js/screens/b.js"}
    )
    (tmp_path / "js" / "screens" / "b.js").write_text("export const b = () => import(name);\n")
    with pytest.raises(AssertionError, match="not written out"):
        module_graph(tmp_path)


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
