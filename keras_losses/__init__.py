"""keras_losses: published classification losses and classifier heads for Keras 3.

Public API:
    GSCLoss, GSCRegularizer, gsc_loss, gsc_penalty   — Gaussian score calibration
    ScaledBatchNormalization                         — scaled BN before softmax
    ExpectedCalibrationError                         — streaming calibration metric
    CosineDense, NPCFaceLoss, ArcFaceLoss, CosFaceLoss — cosine-margin heads
    auto_scale                                       — a logit scale for few classes
    tar_at_far, roc_curve                            — verification metrics for embedding pairs
    pedcc_centroids, centroid_quality, known_optimum, max_cosine_lower_bound,
    CentroidQuality, PEDCCDense, PEDCCLoss          — PEDCC
    GaussianClassHead, ICULoss, build_icu_model      — ICU Gaussian head, margins, regulariser
    BatchTermModel                                   — a keras.Model adding its layers' batch-level loss terms
"""

from keras_losses.batch_term_model import BatchTermModel
from keras_losses.cosine_dense import CosineDense
from keras_losses.gsc import GSCLoss, GSCRegularizer, gsc_loss, gsc_penalty
from keras_losses.icu import GaussianClassHead, ICULoss, build_icu_model
from keras_losses.margin_losses import ArcFaceLoss, CosFaceLoss, CosineMarginLoss, NPCFaceLoss, auto_scale
from keras_losses.metrics import ExpectedCalibrationError
from keras_losses.pedcc import PEDCCDense, PEDCCLoss
from keras_losses.pedcc_centroids import (
    CentroidQuality,
    centroid_quality,
    known_optimum,
    max_cosine_lower_bound,
    pedcc_centroids,
)
from keras_losses.scaled_bn import ScaledBatchNormalization
from keras_losses.verification import roc_curve, tar_at_far

__version__ = "0.1.0"

__all__ = [
    "ArcFaceLoss",
    "BatchTermModel",
    "CentroidQuality",
    "CosFaceLoss",
    "CosineDense",
    "CosineMarginLoss",
    "ExpectedCalibrationError",
    "GSCLoss",
    "GSCRegularizer",
    "GaussianClassHead",
    "ICULoss",
    "NPCFaceLoss",
    "PEDCCDense",
    "PEDCCLoss",
    "ScaledBatchNormalization",
    "auto_scale",
    "build_icu_model",
    "centroid_quality",
    "gsc_loss",
    "gsc_penalty",
    "known_optimum",
    "max_cosine_lower_bound",
    "pedcc_centroids",
    "roc_curve",
    "tar_at_far",
]
