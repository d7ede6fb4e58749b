"""The package builds (sdist, and a wheel from that sdist) and works installed, without the repository.

The build runs on a copy of the repository in a temporary folder (nothing is written into the
checkout) with ``python -m build --no-isolation``: the sdist first, then the wheel from the unpacked
sdist, so a file missing from the sdist breaks the wheel too. The wheel is installed with
``--no-deps`` into a fresh virtual environment that sees this environment's dependencies (Keras,
TensorFlow, NumPy) through a one-line ``.pth`` file holding the path of this environment's
site-packages. A plain path line in a ``.pth`` file only appends that directory to ``sys.path``; the
``.pth`` files inside it are not processed, so the editable install of the repository
(``__editable__.keras_losses-*.pth``) stays inactive there — the test asserts that the imported
``keras_losses`` is the installed copy. A tiny model then trains for one epoch, is saved as
``.keras`` and reloaded, with the working directory outside the repository.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# What is not part of a source checkout: environments, build outputs, caches, run outputs.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs", "*.keras"
)

_SMOKE = r"""
import os, sys
import numpy as np
import keras
import keras_losses

installed = os.path.realpath(sys.argv[1])
where = os.path.realpath(keras_losses.__file__)
assert where.startswith(installed + os.sep), (where, installed)
assert keras_losses.__version__ == sys.argv[2], (keras_losses.__version__, sys.argv[2])

from importlib import metadata
assert metadata.version("keras_losses") == sys.argv[2]

rng = np.random.default_rng(0)
x = rng.normal(size=(32, 8)).astype("float32")
y = rng.integers(0, 4, size=(32,))
inputs = keras.Input((8,))
features = keras.layers.Dense(6)(inputs)
cosines = keras_losses.CosineDense(4)(features)
model = keras.Model(inputs, cosines)
model.compile(optimizer="sgd", loss=keras_losses.ArcFaceLoss(scale="auto"))
history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][0]), history.history

model.save("tiny.keras")
reloaded = keras.models.load_model("tiny.keras")
np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
assert isinstance(reloaded.loss, keras_losses.ArcFaceLoss), reloaded.loss
print("OK", where)
"""


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{args} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.slow
def test_sdist_and_wheel_build_install_and_train_outside_the_repository(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE)
    dist = tmp_path / "dist"
    # sdist, then the wheel built from the unpacked sdist; this interpreter's setuptools and wheel.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)])

    (sdist,) = dist.glob("keras_losses-*.tar.gz")
    (wheel,) = dist.glob("keras_losses-*-py3-none-any.whl")
    version = wheel.name.split("-")[1]
    assert sdist.name == f"keras_losses-{version}.tar.gz"

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    modules = {name for name in names if name.startswith("keras_losses/") and name.endswith(".py")}
    expected = {f"keras_losses/{path.name}" for path in (source / "keras_losses").glob("*.py")}
    assert expected <= modules, sorted(expected - modules)
    dist_info = f"keras_losses-{version}.dist-info/"
    # setuptools < 69 writes dist-info/LICENSE, newer ones dist-info/licenses/LICENSE
    assert {dist_info + "LICENSE", dist_info + "licenses/LICENSE"} & set(names), names
    assert not [name for name in names if name.split("/")[0] in ("models", "tests", "colab", "benchmarks")], names

    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in ("LICENSE", "README.md", "setup.cfg", "pyproject.toml", "CHANGELOG.md", "CITATION.cff",
                     "keras_losses/__init__.py"):
        assert required in members, (required, sorted(members))

    # A fresh environment: the wheel first (pip sees only the new environment), then the .pth line.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site_packages = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    outer_pth = site_packages / "_outer_site_packages.pth"
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONNOUSERSITE="1", CUDA_VISIBLE_DEVICES="")

    # Before the wheel: the .pth line gives the dependencies but not the repository's editable install.
    outer_pth.write_text(sysconfig.get_paths()["purelib"] + "\n")
    find_specs = "import importlib.util as u; print(u.find_spec('keras_losses'), u.find_spec('keras'))"
    probe = _run([str(python), "-c", find_specs], cwd=work, env=env).stdout
    assert probe.startswith("None ModuleSpec"), probe
    outer_pth.unlink()

    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--no-cache-dir", "--disable-pip-version-check", str(wheel)])
    outer_pth.write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = _run([str(python), "-c", _SMOKE, str(site_packages), version], cwd=work, env=env)
    assert "OK" in result.stdout
