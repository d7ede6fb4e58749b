"""PEDCC centroid generation: the authors' charge model (200 iterations) against the default.

    python -m benchmarks.pedcc_centroids                         # the table in benchmarks/results
    python -m benchmarks.pedcc_centroids --cases 100x512,300x32  # quick look

For each C × D: quality (max pairwise cosine, lower is better) of the random start (the
authors' iteration 0), and wall time and quality of ``pedcc_centroids(C, D, iterations=200)``
(the authors' charge-repulsion schedule) and of the default ``pedcc_centroids(C, D)``, next to the
known optimum where there is one. Seed 0 for all.

The authors' schedule costs O(C²·D) per iteration and is not shortened: where two timed
iterations project the 200 beyond ``--authors-limit`` seconds, the table reports the measured
time per iteration and the projection instead of running it.

Writes ``<output>/pedcc_centroids.md``; ``main`` returns the rows.
"""

import argparse
import os
import platform
import time

import numpy as np

from keras_losses.pedcc_centroids import (
    AUTHORS_ITERATIONS,
    centroid_quality,
    known_optimum,
    pedcc_centroids,
)

DEFAULT_CASES = "10x512,100x512,1000x512,100x64,300x32,2000x128,10000x512"


def _method(num_classes, dim):
    if num_classes <= dim + 1:
        return "regular simplex"
    if num_classes <= 2 * dim:
        return f"{num_classes - dim} orthogonal simplices"
    if dim == 2:
        return "regular polygon"
    from keras_losses.pedcc_centroids import _default_iterations

    return f"surrogate, {_default_iterations(num_classes, dim)} steps"


def _timed(fn, repeat_below=1.0, repeats=3):
    """(value, seconds); runs under ``repeat_below`` seconds are repeated and the fastest kept,
    so that other jobs on a shared machine disturb the short timings less."""
    start = time.perf_counter()
    value = fn()
    best = time.perf_counter() - start
    if best < repeat_below:
        for _ in range(repeats - 1):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    return value, best


def run_case(num_classes, dim, args):
    row = {"classes": num_classes, "dim": dim, "optimum": known_optimum(num_classes, dim)}
    print(f"{num_classes} x {dim}: ", end="", flush=True)
    # The authors' start (iterations=0): seeded Gaussian points, normalised.
    row["random_max_cos"] = centroid_quality(pedcc_centroids(num_classes, dim, seed=args.seed, iterations=0))

    centroids, seconds = _timed(lambda: pedcc_centroids(num_classes, dim, seed=args.seed))
    row.update(default_max_cos=centroid_quality(centroids), default_seconds=seconds,
               default_method=_method(num_classes, dim))
    print(f"default {row['default_max_cos']:+.4f} in {seconds:.2f} s; ", end="", flush=True)

    probe_iterations = 2
    _, probe = _timed(
        lambda: pedcc_centroids(num_classes, dim, seed=args.seed, iterations=probe_iterations), repeat_below=0
    )
    per_iteration = probe / probe_iterations
    row["authors_seconds_per_iteration"] = per_iteration
    projected = per_iteration * AUTHORS_ITERATIONS
    if projected <= args.authors_limit:
        centroids, seconds = _timed(
            lambda: pedcc_centroids(num_classes, dim, seed=args.seed, iterations=AUTHORS_ITERATIONS)
        )
        row.update(authors_max_cos=centroid_quality(centroids), authors_seconds=seconds)
        print(f"authors {row['authors_max_cos']:+.4f} in {seconds:.2f} s", flush=True)
    else:
        row.update(authors_max_cos=None, authors_seconds=None, authors_projected_seconds=projected)
        print(f"authors skipped ({per_iteration:.2f} s/iteration, ~{projected:.0f} s projected)", flush=True)
    return row


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def to_markdown(rows, args, load):
    lines = [
        f"Seed {args.seed}. Max pairwise cosine (lower is better) and wall time (best of 3 where under 1 s). Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, NumPy {np.__version__}; "
        f"1-minute load average {load[0]:.2f} at the start, {load[1]:.2f} at the end (other jobs on "
        "the machine slow the timings).",
        "",
        "| C × D | known optimum | random start: max cos | authors, 200 it.: max cos | authors: s "
        "| default: max cos | default: s | default method |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    for r in rows:
        if r["authors_max_cos"] is None:
            authors_cos = "not run"
            authors_time = f"~{r['authors_projected_seconds']:.0f} (projected)"
            notes.append(
                f"{r['classes']:,} × {r['dim']}: the authors' schedule was not run; "
                f"{r['authors_seconds_per_iteration']:.2f} s per iteration measured "
                f"(2 iterations), {AUTHORS_ITERATIONS} iterations ≈ {r['authors_projected_seconds'] / 60:.0f} min "
                f"> the {args.authors_limit:.0f} s limit."
            )
        else:
            authors_cos = f"{r['authors_max_cos']:+.4f}"
            authors_time = f"{r['authors_seconds']:.2f}"
        lines.append(
            f"| {r['classes']:,} × {r['dim']} | {_fmt(r['optimum'], '+.4f')} | {r['random_max_cos']:+.4f} | "
            f"{authors_cos} | {authors_time} | "
            f"{r['default_max_cos']:+.4f} | {r['default_seconds']:.2f} | {r['default_method']} |"
        )
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated CxD, e.g. 100x512,300x32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--authors-limit", type=float, default=300.0,
                        help="skip the authors' 200 iterations when projected above this many seconds")
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args(argv)
    try:
        cases = [tuple(int(v) for v in case.lower().split("x")) for case in args.cases.split(",")]
        if any(len(case) != 2 or case[0] < 2 or case[1] < 2 for case in cases):
            raise ValueError
    except ValueError:
        parser.error(f"--cases must be comma-separated CxD with C, D >= 2, got {args.cases!r}")
    if args.seed < 0:
        parser.error("--seed must be >= 0")

    load_start = os.getloadavg()[0]
    rows = [run_case(c, d, args) for c, d in cases]
    table = to_markdown(rows, args, (load_start, os.getloadavg()[0]))
    print(table)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "pedcc_centroids.md"), "w") as f:
        f.write(table)
    return rows


if __name__ == "__main__":
    main()
