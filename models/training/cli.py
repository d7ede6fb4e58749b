"""The command line of ``python -m models.train``: flags from :class:`TrainConfig` and the method registry.

The method hyper-parameter flags, their help (with each method's default) and their checks come
from :mod:`models.methods`, i.e. from the library's own signatures and argument checks.
"""

import argparse
import sys

from models import methods
from models._common import non_negative_int, positive_float, positive_int
from models.training.config import PRECISIONS, STRATEGIES, TrainConfig, UsageError
from models.training.fit import train


def hyperparameter_flags():
    """``{name: (flag, aliases, type, help)}`` over every registered method; a name shared by several
    methods (``scale``, ``margin``) is one flag whose help lists each method's default."""
    flags = {}
    for method in (methods.get(name) for name in methods.names()):
        for hp in method.hyperparameters:
            entry = flags.setdefault(hp.name, {"hp": hp, "aliases": set(), "defaults": {}})
            entry["aliases"].update(hp.aliases)
            entry["defaults"][method.name] = hp.default_value
            if hp.type is not entry["hp"].type:
                raise TypeError(f"hyper-parameter {hp.name!r} has different types in different methods")
    return flags


def _number(kind):
    def parse(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
    return parse


def _dataset_option(text):
    """``NAME=VALUE`` → (name, value): an int, a float, true/false, none, or the text itself."""
    name, separator, raw = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return name.strip(), lowered == "true"
    if lowered == "none":
        return name.strip(), None
    for kind in (int, float):
        try:
            return name.strip(), kind(raw)
        except ValueError:
            pass
    return name.strip(), raw


def build_parser():
    from models.backbones import BACKBONES
    from models.data import DATASETS

    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Train one model with one method: backbone → the method's head and loss, model.fit on a "
                    "tf.data pipeline, evaluation, plots; an interrupted run resumes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="methods:\n" + "\n".join(f"  {m:<16} {methods.get(m).summary}" for m in methods.names()),
    )
    p.add_argument("--method", choices=methods.names(), default=defaults.method, help="default: %(default)s")
    p.add_argument("--dataset", choices=DATASETS, default=defaults.dataset, help="default: %(default)s")
    p.add_argument("--backbone", choices=BACKBONES, default=None, help="default: one that suits the dataset")
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                   help="global batch size (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="default: %(default)s")
    p.add_argument("--output", default=None, help="run folder (default: runs/<dataset>-<method>-seed<seed>)")
    p.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy,
                   help="auto: several GPUs (TensorFlow: mirrored) or devices (JAX: data parallel), else one "
                        "device; class-sharded: JAX only, the head's class axis split over the devices "
                        "(default: %(default)s)")
    p.add_argument("--mixed-precision", choices=tuple(PRECISIONS), default=defaults.mixed_precision,
                   help="default: %(default)s")
    p.add_argument("--jit-compile", action="store_true", help="XLA on TensorFlow (ignored with several replicas); JAX always compiles")
    p.add_argument("--embedding-dim", type=positive_int, default=defaults.embedding_dim, help="default: %(default)s")
    p.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate,
                   help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--fine-tune-epochs", type=non_negative_int, default=defaults.fine_tune_epochs,
                   help="the last N epochs form a fine-tuning stage: a fresh Adam at --fine-tune-learning-rate, "
                        "and a head's frozen weights train there (PEDCC's centroids) (default: %(default)s, none)")
    p.add_argument("--fine-tune-learning-rate", type=positive_float, default=None,
                   help="Adam's learning rate in that stage (default: a tenth of --learning-rate)")
    p.add_argument("--keep-head-frozen", dest="fine_tune_head", action="store_false",
                   help="in that stage, keep the head's frozen weights frozen (only the learning rate changes)")
    p.add_argument("--dataset-option", dest="dataset_options", action="append", type=_dataset_option, default=[],
                   metavar="NAME=VALUE", help="a data-set option, repeatable (e.g. noise_rate=0.4 for noisy-digits, "
                   "imbalance_ratio=50 for longtail; the list: models.data.OPTIONS)")
    p.add_argument("--verbose", type=non_negative_int, default=defaults.verbose,
                   help="0 silent, 1 progress bar, 2 one line per epoch (default: %(default)s)")
    group = p.add_argument_group(
        "method hyper-parameters", "defaults are the library's unless a method states its own; values are "
        "checked by the library class that takes them")
    for name, entry in hyperparameter_flags().items():
        hp = entry["hp"]
        shown = ", ".join(f"{m} {v}" for m, v in entry["defaults"].items())
        group.add_argument(hp.flag, *sorted(entry["aliases"]), dest=name, type=_number(hp.type), default=None,
                           metavar="VALUE", help=f"{hp.help} (default: {shown})")
    return p


def parse_config(argv=None):
    """The :class:`TrainConfig` of a command line (not yet resolved)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = hyperparameter_flags()
    given = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    method = methods.get(args.method)
    own = {hp.name for hp in method.hyperparameters}
    foreign = [flags[name]["hp"].flag for name in given if name not in own]
    if foreign:
        parser.error(f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to --method "
                     f"{args.method} (its flags: {', '.join(hp.flag for hp in method.hyperparameters) or 'none'})")
    fields = {key: value for key, value in vars(args).items() if key not in flags}
    fields["dataset_options"] = dict(fields["dataset_options"])
    return TrainConfig(**fields, hyperparameters=given)


def main(argv=None):
    """Runs ``python -m models.train`` with ``argv``; returns the run's metrics. Exits with code 2 (and
    a one-line message, no traceback) on a bad command line or an output folder holding another run."""
    config = parse_config(argv)
    try:
        return train(config)
    except UsageError as error:
        message = str(error)
        if error.hyperparameter is not None:  # name the flag
            message = f"{hyperparameter_flags()[error.hyperparameter]['hp'].flag}: {error.detail}"
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
