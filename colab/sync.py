"""Builds the notebooks in ``colab/`` from their sources: ``python colab/sync.py [--check]``.

Each notebook's source is a jupytext percent-format script, ``colab/NN_name.py`` (``# %%`` starts
a code cell, ``# %% [markdown]`` a markdown cell, ``# %% tags=["parameters"]`` tags the parameters
cell). The committed ``colab/NN_name.ipynb`` beside it is generated from it, without outputs and
with fixed cell ids and Colab metadata, so it opens in Colab as it is and never drifts: edit the
``.py``, run this script, commit both. ``--check`` writes nothing and exits 1 if any ``.ipynb`` is
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


def sources(folder=COLAB_DIR):
    """The notebook sources, ``NN_name.py``, in order."""
    return sorted(glob.glob(os.path.join(folder, "[0-9][0-9]_*.py")))


def build(source_path):
    """The ``.ipynb`` text that ``source_path`` gives."""
    import jupytext
    import nbformat

    parsed = jupytext.read(source_path, fmt="py:percent")
    cells = []
    for index, cell in enumerate(parsed.cells):
        metadata = {"tags": list(cell.metadata["tags"])} if cell.metadata.get("tags") else {}
        cell_id = f"cell-{index:02d}"
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(cell.source, id=cell_id, metadata=metadata))
        else:
            cells.append(nbformat.v4.new_code_cell(cell.source, id=cell_id, metadata=metadata))
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
