"""Builds the notebooks in ``colab/`` from their sources: ``python colab/sync.py [--check]``.

Each notebook's source is a jupytext percent-format script, ``colab/NN_name.py`` (``# %%`` starts
a code cell, ``# %% [markdown]`` a markdown cell, ``# %% tags=["parameters"]`` tags the parameters
cell). The committed ``colab/NN_name.ipynb`` beside it is generated from it, without outputs and
with fixed cell ids and Colab metadata, so it opens in Colab as it is and never drifts: edit the
``.py``, run this script, commit both. The install cell, the same in every notebook, is written
once here (``INSTALL_CELLS``) and placed right after the parameters cell. ``--check`` writes nothing and exits 1 if any ``.ipynb`` is
missing or differs from what its source gives (the test suite runs the same check).
"""

import argparse
import glob
import os
import sys

COLAB_DIR = os.path.dirname(os.path.abspath(__file__))
NOTEBOOK_METADATA = {
    "accelerator": "GPU",
    "colab": {"gpuType": "T4", "provenance": [], "toc_visible": True},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


# In a fresh Colab runtime: clone the project and install it with its example extras. Skipped where
# keras_losses and the repository's models package are importable already (a clone, CI).
INSTALL_CELLS = (
    ("markdown", """## Install
In a fresh Colab runtime this clones the project and installs it with its example extras
(tensorflow-datasets, scikit-learn, matplotlib). Where `keras_losses` and the repository's `models`
package are importable already (a clone, CI) it does nothing. For a fork, change `REPO_URL`."""),
    ("code", """REPO_URL = "https://github.com/keras-losses/keras_losses"  # the project's public repository
import importlib.util
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow's C++ start-up notices


def importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


if os.path.isdir("keras_losses_repo") and os.path.abspath("keras_losses_repo") not in sys.path:
    sys.path.insert(0, os.path.abspath("keras_losses_repo"))  # a clone from before a session restart
if not (importable("keras_losses") and importable("models.notebook")):
    if not os.path.isdir("keras_losses_repo"):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, "keras_losses_repo"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "./keras_losses_repo[examples]"], check=True)
    sys.path.insert(0, os.path.abspath("keras_losses_repo"))"""),
)


def sources(folder=COLAB_DIR):
    """The notebook sources, ``NN_name.py``, in order."""
    return sorted(glob.glob(os.path.join(folder, "[0-9][0-9]_*.py")))


def build(source_path):
    """The ``.ipynb`` text that ``source_path`` gives."""
    import jupytext
    import nbformat

    parsed = jupytext.read(source_path, fmt="py:percent")
    plan = []  # (cell type, source, tags)
    for cell in parsed.cells:
        tags = list(cell.metadata.get("tags", []))
        plan.append((cell.cell_type, cell.source, tags))
        if "parameters" in tags:
            plan.extend((kind, text, []) for kind, text in INSTALL_CELLS)
    if not any("parameters" in tags for _, _, tags in plan):
        raise ValueError(f"{source_path} has no cell tagged parameters")
    cells = []
    for index, (kind, text, tags) in enumerate(plan):
        metadata, cell_id = ({"tags": tags} if tags else {}), f"cell-{index:02d}"
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cells.append(make(text, id=cell_id, metadata=metadata))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=NOTEBOOK_METADATA)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def notebook_path(source_path):
    return os.path.splitext(source_path)[0] + ".ipynb"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python colab/sync.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        target, text = notebook_path(source), build(source)
        current = open(target, encoding="utf-8").read() if os.path.exists(target) else None
        if current == text:
            continue
        stale.append(os.path.basename(target))
        if not args.check:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
    verb = "out of date" if args.check else "written"
    print(f"{len(sources())} notebook(s); {verb}: {', '.join(stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
