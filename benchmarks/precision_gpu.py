"""Mixed precision on a GPU: step time and peak GPU memory, float32 vs mixed_float16.

For users with a GPU (on a machine without one it prints a message and exits 0). The model is
the one of ``benchmarks/precision_cpu.py``: 12 Dense(2048, relu) layers, batch 8192, Adam
(wrapped in ``keras.optimizers.LossScaleOptimizer`` for float16), trained in a compiled
(``tf.function``) step. Each policy runs in a fresh process; memory is TensorFlow's own
allocator statistics for the device, ``tf.config.experimental.get_memory_info("GPU:0")``:
``current`` after building the weights and Adam slots, then ``peak`` over the steps after
``reset_memory_stats``. float32 is the anchor.

    python -m benchmarks.precision_gpu [--layers 12] [--width 2048] [--batch 8192] [--steps 20]
                                       [--jit-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks._common import machine, out_path

QUICK_ARGS = ["--layers", "4", "--width", "1024", "--batch", "2048", "--steps", "5"]
POLICIES = ("float32", "mixed_float16")

_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np
import tensorflow as tf

policy = sys.argv[1]
layers, width, batch, steps, jit = (int(a) for a in sys.argv[2:7])
for gpu in tf.config.list_physical_devices("GPU"):
    tf.config.experimental.set_memory_growth(gpu, True)

def gpu_mb(key):
    return tf.config.experimental.get_memory_info("GPU:0")[key] / 2**20

keras.config.set_dtype_policy(policy)
keras.utils.set_random_seed(0)
with tf.device("/GPU:0"):
    model = keras.Sequential(
        [keras.Input((width,))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(layers)]
        + [keras.layers.Dense(1, dtype="float32")]
    )
    optimizer = keras.optimizers.Adam(1e-4)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, width), dtype=np.float32))
    y = tf.constant(rng.standard_normal((batch, 1), dtype=np.float32))

@tf.function(jit_compile=bool(jit))
def step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

built = gpu_mb("current")
tf.config.experimental.reset_memory_stats("GPU:0")
float(step(x, y))  # traces and warms up
start = time.perf_counter()
for _ in range(steps):
    loss = step(x, y)
loss = float(loss)  # waits for the device
seconds = (time.perf_counter() - start) / steps
print(json.dumps({
    "policy": policy, "built_mb": built, "peak_mb": gpu_mb("peak"),
    "step_s": seconds, "loss": loss,
    "device": tf.config.experimental.get_device_details(
        tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU"),
}))
"""


def gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def measure(policy: str, layers: int, width: int, batch: int, steps: int, jit: bool) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = [policy, layers, width, batch, steps, int(jit)]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(
    layers: int = 12,
    width: int = 2048,
    batch: int = 8192,
    steps: int = 20,
    jit_compile: bool = False,
) -> list[dict] | None:
    if not gpus():
        print(
            "No GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty): "
            "nothing to measure. Run this on a machine with a CUDA GPU and a GPU build of "
            "TensorFlow (pip install 'tensorflow[and-cuda]'); on CPU see "
            "benchmarks/precision_cpu.py."
        )
        return None
    rows = []
    for policy in POLICIES:
        m = measure(policy, layers, width, batch, steps, jit_compile)
        m["name"] = policy
        m["step_adds_mb"] = m["peak_mb"] - m["built_mb"]
        rows.append(m)
        print(f"  {policy}: {m['step_s'] * 1000:.1f} ms/step, peak {m['peak_mb']:.0f} MB")
    ref = rows[0]
    print(
        f"\nMixed precision on {ref['device']}: {layers} x Dense({width}, relu), batch {batch}, "
        f"Adam, compiled train step{' (XLA)' if jit_compile else ''}, mean of {steps} steps"
    )
    print(
        f"{'policy':<16}{'ms/step':>9}{'built MB':>10}{'peak MB':>9}{'adds MB':>9}"
        f"{'speed':>8}{'peak':>8}{'adds':>8}"
    )
    print(f"{'':<53}{'--- vs float32 ---':>20}")
    for r in rows:
        r["speedup"] = ref["step_s"] / r["step_s"]
        r["peak_ratio"] = r["peak_mb"] / ref["peak_mb"]
        r["adds_ratio"] = r["step_adds_mb"] / ref["step_adds_mb"]
        print(
            f"{r['name']:<16}{r['step_s'] * 1000:>9.1f}{r['built_mb']:>10.0f}"
            f"{r['peak_mb']:>9.0f}{r['step_adds_mb']:>9.0f}{r['speedup']:>7.2f}x"
            f"{r['peak_ratio']:>7.2f}x{r['adds_ratio']:>7.2f}x"
        )
    print(
        "built: GPU memory after creating the float32 weights and Adam slots (a mixed policy "
        "keeps both in float32); peak: over the steps; adds = peak - built (activations, "
        "gradients, temporaries) — the part mixed precision can shrink."
    )
    doc = {
        "title": "precision_gpu",
        "machine": machine(),
        "config": {"layers": layers, "width": width, "batch": batch, "steps": steps},
        "rows": rows,
    }
    with open(out_path("precision_gpu.json"), "w") as f:
        json.dump(doc, f, indent=2)
    print(f"(written to {out_path('precision_gpu.json')})")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jit-compile", action="store_true")
    args = parser.parse_args(argv)
    run(args.layers, args.width, args.batch, args.steps, args.jit_compile)


if __name__ == "__main__":
    main()
