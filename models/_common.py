"""Shared pieces of the command-line tools in models/: argparse value types, result files, plotting."""

import argparse
import math


def _number(text, cast, low, low_open, what):
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if (cast is float and not math.isfinite(value)) or value < low or (low_open and value == low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text):
    return _number(text, int, 0, True, "a positive integer")


def non_negative_int(text):
    return _number(text, int, 0, False, "a non-negative integer")


def positive_float(text):
    return _number(text, float, 0.0, True, "a number > 0")


def non_negative_float(text):
    return _number(text, float, 0.0, False, "a number >= 0")


def name_list(valid, what):
    """An argparse type: comma-separated names from ``valid``, repeats dropped, order kept."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in valid]
        if not names or unknown:
            shown = ", ".join(map(repr, unknown)) if unknown else repr(text)
            raise argparse.ArgumentTypeError(f"unknown {what}(s) {shown}; valid {what}s are: {', '.join(valid)}")
        return list(dict.fromkeys(names))

    return parse


def int_list(low, what="integers"):
    """An argparse type: comma-separated integers >= ``low``, repeats dropped, order kept."""

    def parse(text):
        expected = f"comma-separated {what} >= {low}"
        values = [_number(part.strip(), int, low, False, expected) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return list(dict.fromkeys(values))

    return parse


seed_list = int_list(0, "seeds")


def write_atomically(path, text):
    """Writes ``text`` to ``path`` so that an interruption never leaves a truncated file there:
    written and flushed to ``<path>.partial``, then renamed (atomic on one file system)."""
    import os

    partial = path + ".partial"
    with open(partial, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def write_markdown_and_json(markdown_path, markdown, json_path, results):
    """Writes a run's markdown report and its JSON results (UTF-8, trailing newline)."""
    import json

    with open(markdown_path, "w", encoding="utf-8") as f:
        f.write(markdown)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


def pyplot():
    """``matplotlib.pyplot`` (imported on first use: plotting is optional): on the file-only Agg
    backend in scripts, on the inline backend left as it is in a notebook, which shows the figures."""
    import matplotlib

    if "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
