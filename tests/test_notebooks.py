"""colab/: every notebook matches its source, and runs top to bottom headless — on the offline path
(embedded data) and on the tensorflow-datasets path with ``tfds.testing.mock_data`` — at a small size
set by overriding its parameters cell. A cell that raises, or runs past CELL_TIMEOUT, fails the test."""

import glob
import os
import sys
import time

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(ROOT, "colab")
CELL_TIMEOUT = 90  # seconds per cell; a whole notebook takes 20-40 s at its CI size (printed, not asserted)

# The CI size of each notebook (applied on top of its parameters cell, papermill-style).
CI_PARAMETERS = {
    "01_gsc_calibration": {"EPOCHS": 2, "SEEDS": [0], "UNLABELED_EPOCHS": 1},
    "02_scaled_bn": {"EPOCHS": 2, "SEEDS": [0], "SCALES": [5.0]},
    "03_pedcc": {"EPOCHS": 2, "SEEDS": [0], "FINE_TUNE_EPOCHS": 1, "FEATURE_EPOCHS": 2},
    "04_icu": {"EPOCHS": 2, "SEEDS": [0], "SPREAD_EPOCHS": 5},
    "05_face_verification": {"EPOCHS": 2, "SEEDS": [0]},
    "06_which_loss": {"EPOCHS": 2, "SEEDS": [0], "METHODS": ["softmax", "pedcc", "icu"]},
}
# The tfds path on mock data: random images, one epoch, a small backbone and fewer models — it
# checks that the tfds data flow through every cell, not what the methods learn.
MOCK_PARAMETERS = {"EPOCHS": 1, "BATCH_SIZE": 32, "BACKBONE": "small-cnn"}
# None: no tfds run for that notebook — 01 reads CIFAR-10 through the same `notebook.load_data` call as
# 03, whose tfds run covers that path (a suite-time choice: each run is a kernel, ~25 CPU-seconds).
MOCK_REDUCTIONS = {
    "01_gsc_calibration": None,
    "02_scaled_bn": {"SCALES": [5.0]},
    "03_pedcc": {"FINE_TUNE_EPOCHS": 1, "FEATURE_EPOCHS": 1},
    "04_icu": {"SPREAD_EPOCHS": 1},
    "05_face_verification": {},
    "06_which_loss": {"METHODS": ["icu"]},  # the label input: the one method-specific data path
}
MOCK_EXAMPLES = 200  # per split; the open-set split needs a few examples of the held-out classes


def notebook_names():
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(COLAB, "[0-9][0-9]_*.ipynb")))


def _sync_module():
    sys.path.insert(0, COLAB)
    try:
        import sync
    finally:
        sys.path.remove(COLAB)
    return sync


def test_every_notebook_has_a_ci_size_and_a_source():
    sources = sorted(os.path.splitext(os.path.basename(p))[0] for p in _sync_module().sources())
    assert notebook_names() == sources == sorted(CI_PARAMETERS) == sorted(MOCK_REDUCTIONS)


@pytest.mark.parametrize("name", sorted(CI_PARAMETERS))
def test_notebook_is_built_from_its_source(name):
    """The committed .ipynb is exactly what `python colab/sync.py` builds from the .py source."""
    sync = _sync_module()
    with open(os.path.join(COLAB, f"{name}.ipynb"), encoding="utf-8") as f:
        assert f.read() == sync.build(os.path.join(COLAB, f"{name}.py")), "run `python colab/sync.py`"


@pytest.mark.parametrize("name", sorted(CI_PARAMETERS))
def test_notebook_opens_with_parameters_then_install(name):
    """Colab needs the install cell before any import of the project, and once per notebook."""
    notebook = nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"] and "import" not in code[0].source
    assert code[1].source.startswith("REPO_URL = ") and "pip" in code[1].source
    assert sum("REPO_URL" in cell.source for cell in code) == 1
    assert not any(cell.get("outputs") for cell in code)  # committed without outputs


def test_a_source_without_parameters_cell_is_refused(tmp_path):
    source = tmp_path / "99_bad.py"
    source.write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="parameters"):
        _sync_module().build(str(source))


def prepare(name, overrides, setup_lines=()):
    """colab/<name>.ipynb with ``setup_lines`` and ``overrides`` in a cell right after its parameters cell."""
    notebook = nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    lines = list(setup_lines) + [f"{key} = {value!r}" for key, value in overrides.items()]
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(lines)))
    return notebook


def execute(notebooks, monkeypatch):
    """Executes ``{label: notebook}`` concurrently, each in its own kernel (two kernels keep both
    cores busy: most of a small notebook's time is single-threaded imports and tracing)."""
    import asyncio

    # The kernels must run this interpreter (the test environment's), whatever `python` is on PATH.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")

    async def run(label, notebook):
        client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                         resources={"metadata": {"path": ROOT}})
        start = time.perf_counter()
        await client.async_execute()
        print(f"{label}: {time.perf_counter() - start:.1f} s")
        if os.environ.get("EXECUTED_NOTEBOOKS_DIR"):  # keep the executed notebook, outputs and figures, to read
            os.makedirs(os.environ["EXECUTED_NOTEBOOKS_DIR"], exist_ok=True)
            nbformat.write(notebook, os.path.join(os.environ["EXECUTED_NOTEBOOKS_DIR"], f"{label}.ipynb"))

    async def run_all():
        await asyncio.gather(*(run(label, notebook) for label, notebook in notebooks.items()))

    asyncio.run(run_all())


def outputs_text(notebook):
    return "".join(
        output.get("text", "") + "".join(str(v) for v in output.get("data", {}).values() if isinstance(v, str))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )


def image_count(notebook):
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CI_PARAMETERS))
def test_notebook_runs_offline_and_on_tfds(name, tmp_path, monkeypatch):
    """Top to bottom at the CI size with DATA_SOURCE="embedded" (no download) and, concurrently (see
    MOCK_REDUCTIONS), with DATA_SOURCE="tfds" through tensorflow-datasets on random mock data."""
    offline = prepare(name, {"DATA_SOURCE": "embedded", "OUTPUT_DIR": str(tmp_path / "offline"),
                             **CI_PARAMETERS[name]})
    runs = {f"{name}-offline": (offline, "offline")}
    if MOCK_REDUCTIONS[name] is not None:
        mock = ["import tensorflow_datasets as tfds", f"_mock = tfds.testing.mock_data(num_examples={MOCK_EXAMPLES})",
                "_mock.__enter__()"]
        tfds_path = prepare(name, {**CI_PARAMETERS[name], **MOCK_PARAMETERS, **MOCK_REDUCTIONS[name],
                                   "DATA_SOURCE": "tfds", "OUTPUT_DIR": str(tmp_path / "tfds")}, mock)
        runs[f"{name}-tfds"] = (tfds_path, "tfds")
    execute({label: notebook for label, (notebook, _) in runs.items()}, monkeypatch)
    for notebook, folder in runs.values():
        text = outputs_text(notebook)
        assert "strategy" in text and "dtype policy" in text  # the runtime cell said what it chose
        assert image_count(notebook) >= 1  # figures are shown inline
        assert glob.glob(os.path.join(tmp_path, folder, "**", "*.keras"), recursive=True)  # a model was saved
    # Each path loaded its own data: a CIFAR variant through tfds, embedded data offline.
    assert "cifar" not in outputs_text(offline)
    if f"{name}-tfds" in runs:
        assert "cifar" in outputs_text(runs[f"{name}-tfds"][0])


def test_install_cell_after_a_session_restart(tmp_path):
    """After a Colab session restart keras_losses is still installed but the clone's `models` is no
    longer on the path: the install cell puts the clone back on the path and installs nothing."""
    import subprocess

    package = tmp_path / "keras_losses_repo" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "notebook.py").write_text("MARK = 'from the clone'\n")
    code = dict((kind, text) for kind, text in _sync_module().INSTALL_CELLS)["code"]
    code = code.replace("subprocess.run(", "raise AssertionError('would install')  # ")  # no git, no pip
    code += "\nimport models.notebook\nprint(models.notebook.MARK)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from the clone"
