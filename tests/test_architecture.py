"""The house rules of backend/ (issue 14), checked on the code itself so they stay true:
packages import only downwards, HTTP modules hold no SQL, only web/ knows Litestar, no module
is over 600 lines, no private names cross modules, and the README's map names every module."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"

# Lowest first: a package may import only from packages before it in this list.
LAYERS = [
    "platform",
    "diary",
    "patients",
    "alerts",
    "push",
    "tasks",
    "exports",
    "intake",
    "system",
    "web",
    "tools",
    "cli",
]
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|PRAGMA|CREATE|DROP|ALTER)\b", re.IGNORECASE)


def modules() -> dict[str, ast.Module]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): ast.parse(
            p.read_text(), str(p)
        )
        for p in sorted(BACKEND.rglob("*.py"))
    }


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports(tree: ast.Module):
    """(imported module, name) of every `from backend... import name` outside TYPE_CHECKING."""
    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and id(node) not in type_only:
            for alias in node.names:
                yield node.module, alias.name


def test_packages_import_only_downwards():
    upward = []
    for name, tree in modules().items():
        own = package(name)
        for target, imported in imports(tree):
            if not target.startswith("backend"):
                continue
            full = f"{target}.{imported}"
            other = package(full if (ROOT / (full.replace(".", "/") + ".py")).exists() else target)
            if other != own and other in LAYERS and LAYERS.index(other) > LAYERS.index(own):
                upward.append(f"{name} imports {full} ({own} -> {other})")
    assert not upward, "\n".join(upward)


def test_no_private_name_is_imported_from_another_module():
    found = [
        f"{name} imports {target}.{imported}"
        for name, tree in modules().items()
        for target, imported in imports(tree)
        if target.startswith("backend") and imported.startswith("_")
    ]
    assert not found, "\n".join(found)


def test_http_modules_hold_no_sql_and_only_they_know_litestar():
    sql_in_web, litestar_outside = [], []
    for name, tree in modules().items():
        uses_litestar = any(
            (isinstance(n, ast.ImportFrom) and (n.module or "").startswith("litestar"))
            or (isinstance(n, ast.Import) and any(a.name.startswith("litestar") for a in n.names))
            for n in ast.walk(tree)
        )
        if uses_litestar and package(name) != "web":
            litestar_outside.append(name)
        if package(name) == "web":
            sql_in_web += [
                f"{name}:{n.lineno}: {n.value.strip()[:60]}"
                for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL.match(n.value)
            ]
    assert not sql_in_web, "SQL in an HTTP module:\n" + "\n".join(sql_in_web)
    assert not litestar_outside, f"Litestar outside web/: {litestar_outside}"


def test_no_backend_module_is_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in BACKEND.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long


def test_the_readme_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## What is where")
    section = readme[start : readme.index("\n## ", start + 1)]
    missing = [
        str(p.relative_to(ROOT))
        for p in BACKEND.rglob("*.py")
        if p.name != "__init__.py" and not re.search(rf"\b{re.escape(p.stem)}\.py\b", section)
    ]
    packages = [p.name for p in BACKEND.iterdir() if (p / "__init__.py").is_file()]
    missing += [f"backend/{name}/" for name in packages if f"{name}/" not in section]
    assert not missing, f"not in the README's map: {missing}"
