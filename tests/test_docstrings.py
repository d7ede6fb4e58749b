"""The docstring examples run as written, and the API reference builds without warnings.

* ``test_docstring_examples`` runs every ``>>>`` example of every ``keras_losses`` module with
  ``doctest`` (globals: ``keras``, ``np``, ``keras_losses`` only, so each example defines the
  rest itself) and checks that every public name has an example of its own.
* ``test_api_reference_builds`` renders the reference with pdoc (Google docstring format) and
  fails on any warning pdoc prints.
"""

import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_losses

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# pdoc prints its warnings as "Warn: ..." (UserWarning, RuntimeWarning) or "<Category>: ...".
PDOC_WARNING = re.compile(r"Warn:|Warning\b")


def _modules():
    """``keras_losses`` and all its submodules (private ones included)."""
    names = ["keras_losses"] + sorted(
        info.name for info in pkgutil.walk_packages(keras_losses.__path__, "keras_losses.")
    )
    # importlib, not getattr: `keras_losses.pedcc_centroids` is also a function of the package.
    return [importlib.import_module(name) for name in names]


def _doctests():
    finder = doctest.DocTestFinder()
    globs = {"keras": keras, "np": np, "keras_losses": keras_losses}
    tests = []
    for module in _modules():
        tests += [test for test in finder.find(module, globs=globs) if test.examples]
    return tests


def test_docstring_examples():
    tests = _doctests()
    names = {test.name for test in tests}

    missing = []
    for name in keras_losses.__all__:
        obj = getattr(keras_losses, name)
        if f"{obj.__module__}.{obj.__qualname__}" not in names:
            missing.append(name)
    assert not missing, f"public names without a docstring example: {missing}"

    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    failures = []
    for test in tests:
        report = []
        result = runner.run(test, out=report.append, clear_globs=True)
        if result.failed:
            failures.append(f"{test.name}:\n" + "".join(report))
    ran = sum(len(test.examples) for test in tests)
    assert not failures, f"{len(failures)} of {len(tests)} docstrings failed:\n\n" + "\n".join(failures)
    assert ran > 0


@pytest.mark.skipif(importlib.util.find_spec("pdoc") is None, reason="pdoc is not installed (pip install pdoc)")
def test_api_reference_builds(tmp_path):
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # TensorFlow's import runs `uname -p`; pdoc would block it and warn about that.
        "PDOC_ALLOW_EXEC": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pdoc", "keras_losses", "-o", str(tmp_path), "--docformat", "google"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if PDOC_WARNING.search(line)]
    assert not warnings, "pdoc warned:\n" + "\n".join(warnings)

    page = tmp_path / "keras_losses.html"
    assert page.is_file(), sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    html = page.read_text(encoding="utf-8")
    absent = [name for name in keras_losses.__all__ if f'id="{name}"' not in html]
    assert not absent, f"keras_losses.html does not document: {absent}"
