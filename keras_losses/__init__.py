"""keras_losses: published classification losses and classifier heads for Keras 3.

Public API:
    GSCLoss, GSCRegularizer, gsc_loss, gsc_penalty   — Gaussian score calibration (SPEC §1)
    ScaledBatchNormalization                         — scaled BN before softmax (SPEC §5)
    ExpectedCalibrationError                         — streaming calibration metric (SPEC §6)
"""

from keras_losses.gsc import GSCLoss, GSCRegularizer, gsc_loss, gsc_penalty
from keras_losses.metrics import ExpectedCalibrationError
from keras_losses.scaled_bn import ScaledBatchNormalization

__version__ = "0.1.0"

__all__ = [
    "ExpectedCalibrationError",
    "GSCLoss",
    "GSCRegularizer",
    "ScaledBatchNormalization",
    "gsc_loss",
    "gsc_penalty",
]
