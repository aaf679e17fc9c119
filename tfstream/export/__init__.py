"""Export for TF Serving: versioned SavedModels that carry their preprocessing, warmup records,
and TF Serving's REST request formats answered locally.

This package imports TensorFlow; ``import tfstream`` resolves ``ts.export_saved_model`` lazily.
"""

from tfstream.export.saved_model import ExportOptions, export_saved_model, list_versions
from tfstream.export.serving import ServingError, load, predict
from tfstream.export.signatures import example_feature_spec
from tfstream.export.warmup import WARMUP_FILE, read_warmup, write_warmup

__all__ = [
    "WARMUP_FILE",
    "ExportOptions",
    "ServingError",
    "example_feature_spec",
    "export_saved_model",
    "list_versions",
    "load",
    "predict",
    "read_warmup",
    "write_warmup",
]
