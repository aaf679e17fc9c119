"""Activation checkpointing: gradients, updates and layer state with remat equal those without
(eagerly, in tf.function, in model.fit, under mixed precision and MirroredStrategy), the
recomputation really happens, selections and error messages."""

import doctest

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import tfstream.train.remat as remat_module  # noqa: E402
from tfstream.testing import mirrored_cpu_strategy  # noqa: E402
from tfstream.train.remat import (  # noqa: E402
    apply_remat,
    rematerialized_layers,
    remove_remat,
    select_remat_layers,
)

TOL = 1e-6
#: Fits compare with SGD + momentum, which is linear in the gradients: a recomputed forward pass
#: may be fused differently by grappler (float32 rounding ~1e-8), and Adam, which divides each
#: update by the root of the second moment, lifts that to 4e-5 in a weight whose gradient is near
#: zero (seen under load); with SGD the weights came out identical. A wrong dropout mask or a
#: doubled BatchNormalization update changes whole gradient entries, far beyond TOL.


class Block(keras.layers.Layer):
    """A residual block of two Dense layers; optionally Dropout and BatchNormalization, whose
    state (seed, moving statistics) a recomputation must not disturb. Counts its calls."""

    def __init__(self, width, *, dropout=0.0, batchnorm=False, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.layers.Dense(width, activation="relu")
        self.b = keras.layers.Dense(width)
        self.dropout = keras.layers.Dropout(dropout, seed=7) if dropout else None
        self.norm = keras.layers.BatchNormalization() if batchnorm else None
        self.calls = 0

    def call(self, x):  # no `training` argument: sub-layers inherit it from the call context
        self.calls += 1
        h = self.a(x)
        if self.dropout is not None:
            h = self.dropout(h)
        if self.norm is not None:
            h = self.norm(h)
        return x + self.b(h)


class Scale(keras.layers.Layer):
    """Uses its own float32 weight directly: under a mixed policy it relies on autocast."""

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


def mlp(width=16, depth=4):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((8,))]
    layers += [
        keras.layers.Dense(width, activation="relu", name=f"dense_{i}") for i in range(depth)
    ]
    return keras.Sequential([*layers, keras.layers.Dense(1, name="head")], name="mlp")


def blocks(width=8, depth=3, **block_kwargs):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    x = keras.layers.Dense(width, name="stem")(inputs)
    for i in range(depth):
        x = Block(width, name=f"block_{i}", **block_kwargs)(x)
    x = Scale(name="scale")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x), name="blocks")


MODELS = {
    "mlp": (mlp, "full"),
    "blocks": (blocks, "blocks"),
    "blocks+dropout+batchnorm": (lambda: blocks(dropout=0.3, batchnorm=True), "blocks"),
    "blocks by name": (lambda: blocks(dropout=0.3), ["block_0", "block_2"]),
    "blocks by class": (lambda: blocks(batchnorm=True), [Block]),
}


def data(rows=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 8)).astype("float32")
    return x, (x[:, :1] * 2 + 0.1 * rng.standard_normal((rows, 1))).astype("float32")


def gradients(model, x, y, *, compiled):
    def step(x, y):
        with tf.GradientTape() as tape:
            out = tf.cast(model(x, training=True), "float32")
            loss = tf.reduce_mean(tf.square(out - y))
        return tape.gradient(loss, model.trainable_variables)

    step = tf.function(step) if compiled else step
    return [np.asarray(g) for g in step(x, y)]


def state(model):
    return [np.asarray(v) for v in model.variables]


def max_diff(a, b):
    assert len(a) == len(b)
    return max(
        float(np.max(np.abs(np.asarray(p, np.float64) - q))) for p, q in zip(a, b, strict=True)
    )


@pytest.fixture
def policy():
    before = keras.config.dtype_policy()
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy(before)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_gradients_and_state_equal_without_remat(kind, compiled):
    make, spec = MODELS[kind]
    x, y = data()
    plain = make()
    expected = gradients(plain, x, y, compiled=compiled)
    model = apply_remat(make(), spec)
    assert rematerialized_layers(model)
    got = gradients(model, x, y, compiled=compiled)
    assert max_diff(got, expected) <= TOL
    # Seeds and moving statistics advanced exactly once, as without remat.
    assert max_diff(state(model), state(plain)) <= TOL


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_the_backward_pass_recomputes_the_block(compiled):
    model = apply_remat(blocks(), ["block_1"])
    x, y = data()

    def calls():
        return [model.get_layer(f"block_{i}").calls for i in range(3)]

    before = calls()
    gradients(model, x, y, compiled=compiled)  # traced once in tf.function: forward + backward
    assert np.subtract(calls(), before).tolist() == [1, 2, 1]
    remove_remat(model)
    assert rematerialized_layers(model) == []
    before = calls()
    gradients(model, x, y, compiled=compiled)
    assert np.subtract(calls(), before).tolist() == [1, 1, 1]


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_recomputes_in_the_compute_dtype(policy, name):
    policy(name)
    x, y = data()
    expected = gradients(blocks(dropout=0.3), x, y, compiled=True)
    model = apply_remat(blocks(dropout=0.3), "full")
    got = gradients(model, x, y, compiled=True)
    assert [g.dtype for g in got] == [g.dtype for g in expected]
    assert max_diff(got, expected) <= TOL


def test_fit_gives_the_same_weights():
    x, y = data(rows=64)

    def fitted(spec):
        model = blocks(dropout=0.2, batchnorm=True)
        if spec is not None:
            apply_remat(model, spec)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        # A learning rate that makes the fit diverge (0.05 did: loss 6 -> 2800) amplifies
        # float32 rounding, so runs of the same model differ; the comparison needs a stable fit.
        assert history.history["loss"][-1] < history.history["loss"][0]
        return state(model)

    assert max_diff(fitted("blocks"), fitted(None)) <= TOL


def test_apply_after_fit_retraces_the_train_step():
    x, y = data()
    model = blocks()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=16, verbose=0)
    assert model.train_function is not None
    apply_remat(model, ["block_0"])
    assert model.train_function is None
    before = model.get_layer("block_0").calls
    model.fit(x, y, batch_size=16, verbose=0)
    assert model.get_layer("block_0").calls == before + 2  # a new trace, with a recomputation


def test_apply_replaces_the_previous_selection():
    model = blocks()
    apply_remat(model, "blocks")
    apply_remat(model, ["block_2"])
    assert rematerialized_layers(model) == ["block_2"]
    apply_remat(model, None)
    assert rematerialized_layers(model) == []


def test_selections():
    model = blocks()

    def names(spec, **kwargs):
        return [layer.name for layer in select_remat_layers(model, spec, **kwargs)]

    assert names("full") == ["stem", "block_0", "block_1", "block_2", "scale", "head"]
    assert names("blocks") == ["block_0", "block_1", "block_2"]
    # Outermost wins: a block and one of its own sub-layers -> the block only.
    inner = model.get_layer("block_1").a.name
    assert names(["block_1", inner, "head"]) == ["block_1", "head"]
    assert names([inner]) == [inner]
    inner_dense = [
        d.name
        for i in range(3)
        for d in vars(model.get_layer(f"block_{i}")).values()
        if isinstance(d, keras.layers.Dense)
    ]
    assert names([keras.layers.Dense]) == ["stem", *inner_dense, "head"]
    assert names(lambda layer: isinstance(layer, Block) and layer.name != "block_0") == [
        "block_1",
        "block_2",
    ]
    # Per-example output sizes: stem/blocks/scale 8, head 1.
    assert names("larger_than", output_size_threshold=4) == [
        "stem",
        "block_0",
        "block_1",
        "block_2",
        "scale",
    ]
    assert names(None) == []
    assert rematerialized_layers(apply_remat(mlp(depth=2), "full")) == [
        "dense_0",
        "dense_1",
        "head",
    ]


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("fulll", ValueError, r"remat='fulll'"),
        (["block_0", "no_such_layer"], ValueError, r"no_such_layer"),
        ([keras.layers.Conv2D], ValueError, r"Conv2D"),
        ([], ValueError, r"empty list"),
        ([3], TypeError, r"Received: 3 \(of type int\)"),
        (Block, TypeError, r"remat=<class"),
        (42, TypeError, r"remat=42 \(of type int\)"),
    ],
)
def test_bad_remat_arguments(spec, error, match):
    model = blocks()
    with pytest.raises(error, match=match):
        apply_remat(model, spec)
    assert rematerialized_layers(model) == []


def test_bad_models_and_thresholds():
    with pytest.raises(ValueError, match=r"remat='blocks'.* matches no layer of model 'mlp'"):
        apply_remat(mlp(), "blocks")
    with pytest.raises(TypeError, match=r"Received: model=.*Dense"):
        apply_remat(keras.layers.Dense(2), "full")
    with pytest.raises(ValueError, match=r"output_size_threshold=-1"):
        apply_remat(mlp(), "larger_than", output_size_threshold=-1)
    with pytest.raises(TypeError, match=r"output_size_threshold=1.5"):
        apply_remat(mlp(), "larger_than", output_size_threshold=1.5)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.block = Block(8, name="block")

        def call(self, x):
            return self.block(x)

    model = Subclassed()
    model(np.zeros((1, 8), "float32"))
    with pytest.raises(ValueError, match=r"output shape of layer 'block'"):
        apply_remat(model, "larger_than")
    assert rematerialized_layers(apply_remat(model, "blocks")) == ["block"]


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_quantized_layers_are_refused():
    model = mlp(depth=1)
    model.quantize("int8")
    with pytest.raises(ValueError, match=r"'dense_0' is quantized \(int8\)"):
        apply_remat(model, ["dense_0"])


def test_mirrored_strategy_fit_and_custom_step():
    # tests/conftest.py splits the CPU into two logical devices before TensorFlow starts.
    strategy = mirrored_cpu_strategy(2)
    assert strategy.num_replicas_in_sync == 2
    x, y = data(rows=64)

    def fitted(spec):
        with strategy.scope():
            model = blocks(dropout=0.2, batchnorm=True)
            if spec is not None:
                apply_remat(model, spec)
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return state(model)

    assert max_diff(fitted("blocks"), fitted(None)) <= TOL

    def step_gradients(spec):
        with strategy.scope():
            model = blocks(dropout=0.2)
            if spec is not None:
                apply_remat(model, spec)

        @tf.function
        def run(x, y):
            def replica(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.square(model(x, training=True) - y))
                return tape.gradient(loss, model.trainable_variables)

            grads = strategy.run(replica, (x, y))
            return [strategy.reduce("SUM", g, axis=None) for g in grads]

        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
        batch = next(iter(strategy.experimental_distribute_dataset(ds)))
        return [np.asarray(g) for g in run(*batch)], state(model)

    (got, got_state), (expected, expected_state) = step_gradients("full"), step_gradients(None)
    assert max_diff(got, expected) <= TOL
    assert max_diff(got_state, expected_state) <= TOL


def test_module_docstring_example_runs():
    result = doctest.testmod(remat_module)
    assert result.attempted > 0 and result.failed == 0
