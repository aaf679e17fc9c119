import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Multi-replica tests mirror over two logical CPUs; the split must precede TensorFlow's device
# initialisation, so it happens here, before any test runs. Other tests are unaffected (ops run
# on the first CPU, as before).
from tfstream.testing import split_cpu  # noqa: E402

split_cpu(2)
