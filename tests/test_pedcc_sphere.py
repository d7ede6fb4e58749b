"""models/pedcc_sphere.py: draws the PEDCC centroids on the 3-D sphere (paper Fig. 3)."""

import pytest

from models import pedcc_sphere


def test_pedcc_sphere_writes_png(tmp_path, capsys):
    """A two-panel run writes a non-empty PNG and prints each panel's max cosine (the regular
    tetrahedron's −1/3 for C = 4)."""
    path = pedcc_sphere.main(["--classes", "4,12", "--output", str(tmp_path)])
    assert path == str(tmp_path / "pedcc_sphere.png")
    assert (tmp_path / "pedcc_sphere.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "C =   4: max pairwise cosine -0.3333" in capsys.readouterr().out


def test_pedcc_sphere_rejects_bad_class_counts(tmp_path):
    """Class counts below 2 are a usage error, and nothing is written."""
    with pytest.raises(SystemExit) as info:
        pedcc_sphere.main(["--classes", "4,1", "--output", str(tmp_path)])
    assert info.value.code not in (0, None)
    assert not (tmp_path / "pedcc_sphere.png").exists()
