"""The main job: ``tfstream fit`` — stream the data, learn the statistics, train within memory,
export for serving — from a config file or a few flags.

Importing this package does not import TensorFlow; :func:`run_fit` does.

Example:

>>> from tfstream.pipeline import load_config, run_fit
>>> config = load_config("fit.yaml", overrides={"train.epochs": 2})   # doctest: +SKIP
>>> result = run_fit(config)                                          # doctest: +SKIP
"""

from tfstream.pipeline.config import (
    ConfigError,
    DataConfig,
    ExportConfig,
    FitConfig,
    ModelConfig,
    StatsConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from tfstream.pipeline.models import ModelSpec, parse_spec
from tfstream.pipeline.run import FitResult, default_loss_and_metrics, run_fit

__all__ = [
    "ConfigError",
    "DataConfig",
    "ExportConfig",
    "FitConfig",
    "FitResult",
    "ModelConfig",
    "ModelSpec",
    "StatsConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "default_loss_and_metrics",
    "load_config",
    "parse_spec",
    "run_fit",
]
