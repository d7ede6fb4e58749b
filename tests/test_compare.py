"""models.compare: bad names exit non-zero. (A short comparison writing its table, JSON and chart, and
reusing finished runs: tests/test_methods.py, with a method registered by the test.)"""


import pytest

from models import compare


def test_unknown_method_exits_non_zero(tmp_path):
    """An unknown method name is an argparse error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        compare.main(["--methods", "softmax,bogus", "--output", str(tmp_path)])
    assert info.value.code == 2
