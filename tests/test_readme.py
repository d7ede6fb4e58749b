"""The README's Usage snippets run as written, and every model they train reaches >= 0.95 on digits.

The first Usage snippet loads the data and defines ``backbone``; each later one runs after it in a
fresh copy of its namespace, with seed 0. A snippet that calls ``fit`` leaves a trained ``model``,
whose test accuracy (argmax of its output) is checked. The cosine-head snippet also runs with the two
losses it names as alternatives.
"""

import os
import re

import keras
import numpy as np
import pytest

import keras_losses
from tests.harness import REPO_ROOT

COSINE_ALTERNATIVES = ('keras_losses.ArcFaceLoss(scale="auto")', 'keras_losses.CosFaceLoss(scale="auto")')


def _usage_snippets():
    with open(os.path.join(REPO_ROOT, "README.md")) as f:
        readme = f.read()
    usage = readme[readme.index("\n## Usage\n"):]
    usage = usage[: usage.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", usage, flags=re.S)


SNIPPETS = _usage_snippets()
CASES = [(index, None) for index in range(1, len(SNIPPETS))] + [
    (index, alternative) for index, code in enumerate(SNIPPETS) if "NPCFaceLoss(scale=" in code
    for alternative in COSINE_ALTERNATIVES
]


@pytest.fixture(scope="module")
def setup_namespace():
    namespace = {}
    exec(compile(SNIPPETS[0], "README setup snippet", "exec"), namespace)
    return namespace


def test_usage_section_has_snippets():
    """The extraction finds the set-up snippet and one per section (GSC, scaled BN, cosine, PEDCC, ICU, ECE)."""
    assert len(SNIPPETS) >= 8 and "load_digits" in SNIPPETS[0]


@pytest.mark.parametrize("index, alternative", CASES,
                         ids=[f"snippet{i}" + (f"-{a.split('.')[1].split('(')[0]}" if a else "") for i, a in CASES])
def test_snippet_runs_and_trains(index, alternative, setup_namespace):
    code = SNIPPETS[index]
    if alternative:
        code = code.replace('keras_losses.NPCFaceLoss(scale="auto")', alternative)
    namespace = dict(setup_namespace)
    keras.utils.set_random_seed(0)
    exec(compile(code, f"README snippet {index}", "exec"), namespace)
    if ".fit(" not in code:
        return
    model, x_test, y_test = namespace["model"], namespace["x_test"], namespace["y_test"]
    inputs = {"image": x_test, "label": None} if isinstance(model, keras_losses.BatchTermModel) else x_test
    accuracy = np.mean(np.argmax(model.predict(inputs, verbose=0), axis=-1) == y_test)
    assert accuracy >= 0.95, (index, alternative, accuracy)
