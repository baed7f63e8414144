"""Fourier neural operators: data generation, models, training, evaluation (DESIGN.md section 2-4)."""

from operators.checkpoint import load_checkpoint, load_model, save_checkpoint
from operators.data import GenerateConfig, generate, generate_arrays
from operators.evaluate import error_metrics, evaluate, plot_samples
from operators.grf import grf_eigenvalues, sample_grf
from operators.io import import_dataset
from operators.layers import SpectralConv, check_modes, spectral_conv
from operators.models import FNO, FNOConfig, Normalizer, functional, param_count
from operators.navier_stokes import solve_navier_stokes
from operators.train import (
    OperatorData,
    TrainConfig,
    h1_loss,
    load_operator_data,
    make_optimizer,
    make_train_epoch,
    predict,
    rel_l2_loss,
    rel_l2_per_sample,
    train_fno,
)

__all__ = [
    "FNO",
    "FNOConfig",
    "GenerateConfig",
    "Normalizer",
    "OperatorData",
    "SpectralConv",
    "TrainConfig",
    "check_modes",
    "error_metrics",
    "evaluate",
    "functional",
    "generate",
    "generate_arrays",
    "grf_eigenvalues",
    "h1_loss",
    "import_dataset",
    "load_checkpoint",
    "load_model",
    "load_operator_data",
    "make_optimizer",
    "make_train_epoch",
    "param_count",
    "plot_samples",
    "predict",
    "rel_l2_loss",
    "rel_l2_per_sample",
    "sample_grf",
    "save_checkpoint",
    "solve_navier_stokes",
    "spectral_conv",
    "train_fno",
]
