"""The README's screenshots: every picture it shows is there and stored losslessly small
(`make screenshots` recompresses them with optipng, which `make browser-deps` installs)."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.browser.conftest import ROOT

SHOTS = ROOT / "docs" / "screenshots"


def test_every_readme_screenshot_exists_and_is_already_as_small_as_optipng_makes_it():
    readme = (ROOT / "README.md").read_text()
    shown = sorted(set(re.findall(r"\(docs/screenshots/([\w.-]+\.png)\)", readme)))
    assert len(shown) >= 10, shown
    missing = [name for name in shown if not (SHOTS / name).is_file()]
    assert not missing, missing
    optipng = shutil.which("optipng")
    assert optipng, "optipng is missing: run `make browser-deps`"
    # -simulate writes nothing; on a file it cannot make smaller it says "already optimized".
    proc = subprocess.run(
        [optipng, "-simulate", "-o1", *(str(SHOTS / name) for name in shown)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = proc.stdout + proc.stderr
    loose = [name for name in shown if f"{name} is already optimized" not in report]
    assert not loose, f"not recompressed (make screenshots-small): {loose}"
