"""PEDCC centroids on the 3-D unit sphere (the PEDCC-Loss paper's Fig. 3).

    python -m models.pedcc_sphere --output runs/pedcc
    python -m models.pedcc_sphere --classes 4,20 --iterations 200   # the authors' charge model

Draws ``keras_losses.pedcc_centroids(C, 3)`` for a few class counts, one panel each: a
wireframe sphere, the centroids as points labelled by class index, the closest pairs (cosine
within 0.01 of the maximum) joined by lines, so the polyhedra show (tetrahedron, octahedron,
square antiprism, icosahedron, ...), and the maximum pairwise cosine in the title (with the known
optimum where there is one). The default generator is used unless ``--iterations`` asks for the
authors' charge model. Writes ``<output>/pedcc_sphere.png``.
"""

import argparse
import math
import os

import numpy as np

from keras_losses.pedcc_centroids import centroid_quality, known_optimum, pedcc_centroids
from models._common import int_list, non_negative_int, pyplot

DEFAULT_CLASSES = "4,6,8,12,20"
DEFAULT_OUTPUT = os.path.join("runs", "pedcc")
CONTACT_TOLERANCE = 0.01  # pairs with cosine >= max - this are joined by a line


def draw(class_counts, path, seed=0, iterations=None):
    """Draws one sphere panel per class count and saves the figure to ``path``.

    Returns:
        dict mapping each class count to the max pairwise cosine of its centroids.
    """
    fig, qualities = sphere_figure(class_counts, seed=seed, iterations=iterations)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return qualities


def sphere_figure(class_counts, seed=0, iterations=None):
    """The figure of :func:`draw` (one sphere panel per class count) and the qualities, unsaved."""
    plt = pyplot()

    columns = min(len(class_counts), 5)
    rows = math.ceil(len(class_counts) / columns)
    fig = plt.figure(figsize=(3.2 * columns, 3.5 * rows + 0.4))
    azimuth, polar = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    sphere = (np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar))
    qualities = {}
    for index, num_classes in enumerate(class_counts):
        centroids = pedcc_centroids(num_classes, 3, seed=seed, iterations=iterations)
        quality = centroid_quality(centroids)
        qualities[num_classes] = quality
        ax = fig.add_subplot(rows, columns, index + 1, projection="3d")
        ax.plot_wireframe(*sphere, color="0.75", linewidth=0.4)
        gram = centroids @ centroids.T
        for k, j in zip(*np.nonzero(np.triu(gram >= quality - CONTACT_TOLERANCE, 1))):
            ax.plot(*centroids[[k, j]].T, color="tab:blue", linewidth=0.8, alpha=0.7)
        colours = plt.cm.tab20(np.arange(num_classes) % 20)
        ax.scatter(*centroids.T, s=40, c=colours, depthshade=False, edgecolors="k", linewidths=0.5)
        for k, point in enumerate(centroids):
            ax.text(*(1.15 * point), str(k), fontsize=7, ha="center", va="center")
        optimum = known_optimum(num_classes, 3)
        title = f"C = {num_classes}: max cos {quality:+.3f}"
        if optimum is not None:
            title += f"\n(optimum {optimum:+.3f})"
        ax.set_title(title, fontsize=9)
        ax.set_box_aspect((1, 1, 1), zoom=1.35)
        limit = 1.1
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), zlim=(-limit, limit))
        ax.set_axis_off()
    method = "default (converged)" if iterations is None else f"charge model, {iterations} iterations"
    fig.suptitle(f"PEDCC class centroids on the unit sphere, D = 3 — {method}, seed {seed}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig, qualities


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int_list(2, "class counts"), default=int_list(2, "class counts")(DEFAULT_CLASSES),
                        help=f"comma-separated class counts, one panel each (default {DEFAULT_CLASSES})")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--iterations", type=non_negative_int, default=None,
                        help="run the authors' charge model for this many iterations instead of the default")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"output folder (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    path = os.path.join(args.output, "pedcc_sphere.png")
    qualities = draw(args.classes, path, seed=args.seed, iterations=args.iterations)
    for num_classes, quality in qualities.items():
        print(f"C = {num_classes:>3}: max pairwise cosine {quality:+.4f}")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
