"""argparse value types shared by the command-line tools in models/."""

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


def non_negative_float(text):
    return _number(text, float, 0.0, False, "a number >= 0")
