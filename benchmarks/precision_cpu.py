"""Mixed precision on CPU: peak RSS and step time of a wide MLP, float32 vs mixed_bfloat16 vs
mixed_float16.

12 Dense(2048, relu) layers, batch 8192, Adam (wrapped in ``keras.optimizers.
LossScaleOptimizer`` for float16), trained in a compiled (``tf.function``) step under the Keras
global dtype policy. Each run is a fresh process (peak RSS, VmHWM, is per process); float32 is
the anchor.

Diagnostics, because a first look found no RSS saving on CPU (``get_memory_info`` has no
allocator statistics for CPU devices, so RSS is all there is):

* the RSS after build (TF/Keras runtime + float32 master weights + float32 Adam slots — a
  mixed policy keeps variables in float32) and what a step adds on top of it;
* the same step at a quarter of the batch: the difference is activation memory, which scales
  with the batch, and shows whether activations are kept in 16 bits;
* forward only (no tape, no optimizer): what inference needs;
* the dtypes of the MatMul ops and the number of Cast ops in the traced train step.

    python -m benchmarks.precision_cpu [--layers 12] [--width 2048] [--batch 8192] [--steps 2]
                                       [--no-diagnostics]
"""

from __future__ import annotations

import argparse
import json

from benchmarks._common import machine, out_path, run_child, step_memory

QUICK_ARGS = ["--layers", "4", "--width", "512", "--batch", "2048"]
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")

_CHILD = r"""
import collections, json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
from benchmarks._common import peak_rss_mb
import keras
import numpy as np
import tensorflow as tf

policy, mode = sys.argv[1], sys.argv[2]
layers, width, batch, steps = (int(a) for a in sys.argv[3:7])

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def tf_bytes():
    # TF's allocator statistics: only when the CPU allocator is a BFC allocator
    # (TF_CPU_ALLOCATOR_USE_BFC=true); None otherwise.
    try:
        info = tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        return None
    return {k: v / 2**20 for k, v in info.items()}

def reset_peak():
    # Resets VmHWM (Linux >= 4.0): the later steps' peak then excludes tracing.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

after_import = peak_rss_mb()
keras.config.set_dtype_policy(policy)
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((width,))]
    + [keras.layers.Dense(width, activation="relu") for _ in range(layers)]
    + [keras.layers.Dense(1, dtype="float32")]
)
optimizer = keras.optimizers.Adam(1e-4)
if policy == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
rng = np.random.default_rng(0)
x = tf.constant(rng.standard_normal((batch, width), dtype=np.float32))
y = tf.constant(rng.standard_normal((batch, 1), dtype=np.float32))

if mode == "train":
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
else:
    @tf.function
    def step(x, y):
        return tf.reduce_mean(model(x, training=False))

ops = collections.Counter()
for op in step.get_concrete_function(x, y).graph.get_operations():
    if op.type in ("MatMul", "BatchMatMulV2"):
        ops[f"{op.type}:{op.get_attr('T').name}"] += 1
    elif op.type == "Cast":
        ops[f"Cast:{op.get_attr('SrcT').name}->{op.get_attr('DstT').name}"] += 1

after_build, rss_after_build = peak_rss_mb(), rss_mb()
tf_built = tf_bytes()
if tf_built is not None:
    tf.config.experimental.reset_memory_stats("CPU:0")
start = time.perf_counter()
value = float(step(x, y))
first = time.perf_counter() - start
first_peak = peak_rss_mb()
reset = reset_peak()
times = []
for _ in range(steps - 1):
    start = time.perf_counter()
    value = float(step(x, y))
    times.append(time.perf_counter() - start)
steady = peak_rss_mb()
tf_steps = tf_bytes()
print(json.dumps({
    "tf_built_mb": tf_built and tf_built["current"],
    "tf_step_peak_mb": tf_steps and tf_steps["peak"],
    "policy": policy, "mode": mode, "batch": batch,
    "variable_dtypes": sorted({v.dtype for v in model.trainable_variables}),
    "slot_dtypes": sorted({v.dtype for v in optimizer.variables if len(v.shape) == 2}),
    "peak_mb": max(first_peak, steady), "steady_peak_mb": steady if reset else None,
    "after_import_mb": after_import, "after_build_rss_mb": rss_after_build,
    "first_step_s": first, "step_s": min(times) if times else first,
    "value": value, "ops": dict(ops), "loadavg": os.getloadavg(),
}))
"""


_PROBE = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
rows, width = int(sys.argv[1]), int(sys.argv[2])
out = {}
for dtype in (tf.float32, tf.bfloat16, tf.float16):
    a, b = tf.zeros((rows, width), dtype), tf.zeros((width, width), dtype)
    matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    matmul(a, b)
    base = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.config.experimental.reset_memory_stats("CPU:0")
    matmul(a, b)
    out[dtype.name] = (tf.config.experimental.get_memory_info("CPU:0")["peak"] - base) / 2**20
print(json.dumps(out))
"""


def measure(policy, mode, layers, width, batch, steps, *, tf_allocator_stats=False) -> dict:
    args = [policy, mode, layers, width, batch, steps]
    return step_memory(run_child(_CHILD, args, tf_allocator_stats=tf_allocator_stats))


def _say(m) -> None:
    what = "TF bytes" if m["tf_step_peak_mb"] is not None else "RSS"
    print(
        f"  {m['policy']:<15} {m['mode']:<8} batch {m['batch']:>6} ({what}): peak RSS "
        f"{m['peak_mb']:.0f} MB, step {m['step_s']:.2f} s (load {m['loadavg'][0]:.2f})",
        flush=True,
    )


def run(
    layers: int = 12,
    width: int = 2048,
    batch: int = 8192,
    steps: int = 2,
    diagnostics: bool = True,
) -> dict:
    if steps < 2:
        raise ValueError(f"--steps must be >= 2 (the first one traces). Received: {steps}")
    main_runs = {}
    for p in POLICIES:
        main_runs[p] = measure(p, "train", layers, width, batch, steps)
        _say(main_runs[p])
    ref = main_runs["float32"]
    mib = 1024 * 1024
    weights = layers * (width * width + width) * 4 / mib
    act32 = batch * width * 4 / mib
    print(
        f"\nMixed precision on CPU: {layers} x Dense({width}, relu), batch {batch}, Adam "
        f"(LossScaleOptimizer for float16), compiled train step, fresh process each; step "
        f"time: best of the {steps - 1} step(s) after the first"
    )
    print(
        f"{'policy':<16}{'peak MB':>9}{'built MB':>10}{'adds MB':>9}{'step s':>8}"
        f"{'peak':>9}{'adds':>8}{'speed':>8}"
    )
    print(f"{'':<16}{'':>36}{'--- vs float32 ---':>25}")
    table = []
    for p in POLICIES:
        m = main_runs[p]
        row = {
            "name": p,
            "peak_mb": m["peak_mb"],
            "after_build_rss_mb": m["after_build_rss_mb"],
            "step_adds_mb": m["step_adds_mb"],
            "seconds": m["step_s"],
            "peak_ratio": m["peak_mb"] / ref["peak_mb"],
            "adds_ratio": m["step_adds_mb"] / ref["step_adds_mb"],
            "speedup": ref["step_s"] / m["step_s"],
            "ops": m["ops"],
        }
        table.append(row)
        print(
            f"{p:<16}{row['peak_mb']:>9.0f}{row['after_build_rss_mb']:>10.0f}"
            f"{row['step_adds_mb']:>9.0f}{row['seconds']:>8.2f}{row['peak_ratio']:>8.2f}x"
            f"{row['adds_ratio']:>7.2f}x{row['speedup']:>7.2f}x"
        )
    print(
        f"peak: whole-process VmHWM; built: RSS after importing TF/Keras "
        f"({ref['after_import_mb']:.0f} MB) and creating the float32 weights ({weights:.0f} MB)"
        f" and Adam slots ({2 * weights:.0f} MB); adds: later steps' VmHWM minus built."
    )
    doc = {
        "title": "precision_cpu",
        "machine": machine(),
        "config": {"layers": layers, "width": width, "batch": batch, "steps": steps},
        "rows": table,
        "runs": list(main_runs.values()),
    }
    if diagnostics:
        doc["diagnostics"] = _diagnose(layers, width, batch, weights, act32, ref)
    with open(out_path("precision_cpu.json"), "w") as f:
        json.dump(doc, f, indent=2)
    print(f"(written to {out_path('precision_cpu.json')})")
    return doc


def _diagnose(layers, width, batch, weights, act32, ref) -> dict:
    """Exact TF tensor bytes (BFC allocator) of the same steps, at two batch sizes and forward
    only, and of one MatMul of the model's shape in each dtype."""
    small = max(batch // 4, 1)
    print(
        "\n  diagnostics: the same runs with TF_CPU_ALLOCATOR_USE_BFC=true (exact tensor bytes)",
        flush=True,
    )
    runs = {}
    for p in POLICIES:
        for mode, rows in (("train", batch), ("train", small), ("forward", batch)):
            runs[(p, mode, rows)] = m = measure(
                p, mode, layers, width, rows, 1, tf_allocator_stats=True
            )
            _say(m)
    probe = run_child(_PROBE, [batch, width], tf_allocator_stats=True)

    print(
        f"\nTF tensor memory (MB, exact). built: weights, Adam slots and the input batch; "
        f"train/forward: step peak above built, batch {batch} and {small}:"
    )
    print(
        f"{'policy':<16}{'built':>14}{'train@' + str(batch):>12}"
        f"{'train@' + str(small):>12}{'KB/row':>8}{'vs f32':>8}{'forward':>9}  MatMul dtypes"
    )
    diag = {"runs": [], "matmul_peak_above_inputs_mb": probe}
    base = None
    for p in POLICIES:
        big, little = runs[(p, "train", batch)], runs[(p, "train", small)]
        fwd = runs[(p, "forward", batch)]
        per_row = (big["tf_step_adds_mb"] - little["tf_step_adds_mb"]) / (batch - small) * 1024
        base = base or per_row
        matmuls = ", ".join(f"{k} x{v}" for k, v in sorted(big["ops"].items()) if "MatMul" in k)
        print(
            f"{p:<16}{big['tf_built_mb']:>14.0f}{big['tf_step_adds_mb']:>12.0f}"
            f"{little['tf_step_adds_mb']:>12.0f}{per_row:>8.1f}{per_row / base:>7.2f}x"
            f"{fwd['tf_step_adds_mb']:>9.0f}  {matmuls}"
        )
        diag["runs"] += [big, little, fwd]
        diag[p] = {"kb_per_row": per_row, "forward_adds_mb": fwd["tf_step_adds_mb"]}
    mb16 = batch * width * 2 / 2**20
    w16 = width * width * 2 / 2**20
    print(
        f"\nOne MatMul [{batch}, {width}] x [{width}, {width}], peak TF memory above its inputs "
        f"(the result alone: {2 * mb16:.0f} MB in float32, {mb16:.0f} MB in 16 bits):"
    )
    for name, peak in probe.items():
        print(f"  {name:<9} {peak:7.0f} MB")
    upcast = mb16 + 2 * mb16 + 2 * w16 + 2 * mb16
    print(
        f"  16-bit result + float32 copies of both operands and of the result = {mb16:.0f} + "
        f"{2 * mb16:.0f} + {2 * w16:.0f} + {2 * mb16:.0f} = {upcast:.0f} MB."
    )
    f32 = diag["float32"]["kb_per_row"]
    print("\nReading:")
    print(
        f"  * The mixed policies keep variables in float32 ({ref['variable_dtypes']} under "
        f"float32 too; mixed runs: {runs[('mixed_bfloat16', 'train', batch)]['variable_dtypes']}"
        f"), Adam slots in {runs[('mixed_bfloat16', 'train', batch)]['slot_dtypes']} and the "
        f"gradients of float32 variables in float32: {3 * weights:.0f} MB of weights + slots "
        f"and {weights:.0f} MB of gradients do not shrink."
    )
    print(
        f"  * Per row of the batch a training step needs {f32:.1f} KB in float32, "
        f"{diag['mixed_bfloat16']['kb_per_row']:.1f} KB in mixed_bfloat16 and "
        f"{diag['mixed_float16']['kb_per_row']:.1f} KB in mixed_float16 "
        f"({layers} layers x {width * 4 / 1024:.0f} KB = {layers * width * 4 / 1024:.0f} KB "
        "would be one float32 activation per layer)."
    )
    fwd = {p: diag[p]["forward_adds_mb"] for p in POLICIES}
    larger = all(fwd[p] > fwd["float32"] for p in POLICIES[1:])
    units = _cpu_16bit_units()
    print(
        f"  * Why: TensorFlow's CPU MatMul kernels for bfloat16/float16 convert both operands "
        f"to float32, multiply in float32 and convert the result back, materialising float32 "
        f"copies: one MatMul of this model's shape peaks at {probe['bfloat16']:.0f} MB "
        f"(bfloat16) / {probe['float16']:.0f} MB (float16) above its inputs against "
        f"{probe['float32']:.0f} MB in float32. What 16-bit activations save is spent on those "
        "float32 temporaries"
        + (" (forward only needs more in 16 bits than in float32)." if larger else ".")
    )
    print(
        "  * This CPU has "
        + (
            f"16-bit matrix instructions ({', '.join(units)})"
            if units
            else "no 16-bit matrix instructions (no avx512_bf16 / avx512_fp16 / amx)"
        )
        + "; mixed precision pays off in memory and speed on GPUs/TPUs (see "
        "benchmarks/precision_gpu.py), not through TensorFlow's CPU kernels."
    )
    return diag


def _cpu_16bit_units() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return []
    return sorted(flags & {"avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile"})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--no-diagnostics", action="store_true")
    args = parser.parse_args(argv)
    run(args.layers, args.width, args.batch, args.steps, diagnostics=not args.no_diagnostics)


if __name__ == "__main__":
    main()
