"""Scaling laws: calculators, Chinchilla-style fits with bootstrap intervals, and the LM scaling experiment.

Importing this package imports numpy and scipy only; the experiment (``scaling.experiment``) imports
torch lazily when it trains.
"""

from scaling.estimates import (
    CHINCHILLA,
    EPOCH,
    KAPLAN,
    PRESETS,
    ChinchillaLaw,
    KaplanLaw,
    attention_cost,
    attention_scaling,
    budget_strategies,
    get_law,
    parameter_memory,
    quantized_size,
    training_flops,
    training_memory,
)
from scaling.exercises import exercises
from scaling.laws import (
    ScalingFit,
    drop_highest_loss,
    fit_chinchilla,
    fit_power_law,
    fit_runs,
    load_runs,
)

__all__ = [
    "CHINCHILLA", "EPOCH", "KAPLAN", "PRESETS", "ChinchillaLaw", "KaplanLaw", "ScalingFit", "attention_cost",
    "attention_scaling", "budget_strategies", "drop_highest_loss", "exercises", "fit_chinchilla", "fit_power_law",
    "fit_runs", "get_law", "load_runs", "parameter_memory", "quantized_size", "training_flops", "training_memory",
]
