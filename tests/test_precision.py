"""Precision by hardware: `--mixed-precision auto|none|<policy>`.

The CPU and GPU checks are faked through `kerascnn.hardware`'s seams, so
these tests give the same answers on every machine.
"""

import json
import os

import keras
import numpy as np
import pytest

from kerascnn import hardware, models, train
from kerascnn.config import recipe_for
from kerascnn.errors import InvalidArgumentError
from tests.helpers import SHORT_LENET_RUN

ZEN4_FLAGS = "fpu sse2 avx2 avx512f avx512bw avx512_vnni avx512_bf16"
SAPPHIRE_RAPIDS_FLAGS = "avx2 avx512f amx_tile amx_int8 amx_bf16"
AVX2_FLAGS = "fpu sse2 avx avx2 fma"


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\n"
        f"flags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    )
    return str(path)


@pytest.fixture
def fake_machine(monkeypatch):
    """Sets the CPU flags and GPUs that `kerascnn.hardware` reports."""

    def fake(flags, gpus=()):
        monkeypatch.setattr(
            hardware, "cpu_flags", lambda path=None: frozenset(flags.split())
        )
        monkeypatch.setattr(
            hardware, "gpu_compute_capabilities", lambda: list(gpus)
        )

    yield fake
    keras.mixed_precision.set_global_policy("float32")


def test_cpu_flags_and_model_come_from_cpuinfo(tmp_path):
    path = _cpuinfo(tmp_path, ZEN4_FLAGS)
    assert "avx512_bf16" in hardware.cpu_flags(path)
    assert hardware.cpu_model(path) == "Test CPU 9000"
    assert hardware.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize(
    "flags, gpus, expected",
    [
        (ZEN4_FLAGS, [], "mixed_bfloat16"),
        (SAPPHIRE_RAPIDS_FLAGS, [], "mixed_bfloat16"),
        (AVX2_FLAGS, [], "float32"),
        ("", [], "float32"),
        (AVX2_FLAGS, [(8, 0)], "mixed_float16"),
        (ZEN4_FLAGS, [(9, 0)], "mixed_float16"),
        (ZEN4_FLAGS, [(6, 1)], "float32"),  # Pascal: no tensor cores
        (ZEN4_FLAGS, [(8, 0), (6, 0)], "float32"),
    ],
)
def test_auto_follows_the_hardware(flags, gpus, expected):
    got = hardware.auto_precision(frozenset(flags.split()), gpus)
    assert got == expected


def test_describe_reports_the_flags_that_matter():
    info = hardware.describe(frozenset(ZEN4_FLAGS.split()))
    assert info["flags"]["avx512_bf16"] and info["flags"]["avx2"]
    assert not info["flags"]["amx_bf16"]
    assert info["native_bf16"]


@pytest.mark.parametrize(
    "flags, requested, recorded",
    [
        (ZEN4_FLAGS, "auto", "mixed_bfloat16"),
        (AVX2_FLAGS, "auto", "none"),
        (ZEN4_FLAGS, "none", "none"),
        (AVX2_FLAGS, "mixed_bfloat16", "mixed_bfloat16"),
        (ZEN4_FLAGS, None, "none"),  # run dirs written before "auto"
    ],
)
def test_fit_records_the_resolved_choice(
    fake_machine, flags, requested, recorded
):
    fake_machine(flags)
    config = recipe_for("lenet")
    config.mixed_precision = requested
    assert train.resolve_precision(config).mixed_precision == recorded


def test_recipes_default_to_auto_and_bad_names_are_refused():
    assert recipe_for("lenet").mixed_precision == "auto"
    with pytest.raises(
        InvalidArgumentError,
        match=r"`mixed_precision` must be one of .*"
        r"Received: mixed_precision='float8'",
    ):
        recipe_for("lenet", mixed_precision="float8")


def test_auto_picks_bf16_for_every_image_recipe_but_not_the_tagger(
    fake_machine,
):
    """CIFAR ResNets, VGG, AlexNet and the ImageNet-family ResNets train
    in bf16 on a native-bf16 CPU; the LSTM tagger stays float32."""
    from kerascnn.config import RECIPES

    fake_machine(ZEN4_FLAGS)
    chosen = {
        name: train.resolve_precision(recipe_for(name)).mixed_precision
        for name in RECIPES
    }
    image_recipes = {
        name
        for name in RECIPES
        if models.get_model_info(name).task == "image_classification"
    }
    assert {"resnet20", "resnet110", "resnet50", "vgg16", "alexnet"} <= (
        image_recipes
    )
    assert {n for n, c in chosen.items() if c == "mixed_bfloat16"} == (
        image_recipes
    )
    assert chosen["slot_tagger"] == "none"
    fake_machine(AVX2_FLAGS)
    assert train.resolve_precision(recipe_for("resnet50")).mixed_precision == (
        "none"
    )


def _resnet20_step(policy, weights, x, y):
    """One recipe step (the project's compile) of a 16x16 ResNet-20."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = models.build(
            "resnet20", input_shape=(16, 16, 3), num_classes=10
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if weights is not None:
        model.set_weights(weights)
    config = recipe_for("resnet20", epochs=1)
    model.compile(
        optimizer=train.make_optimizer(config, steps_per_epoch=1),
        loss=train._loss(config),
    )
    loss = model.train_on_batch(x, y)
    return model, float(loss)


def test_bf16_resnet_step_keeps_float32_state_and_statistics():
    """Under mixed_bfloat16 the master weights, optimizer slots and BN
    moving statistics are float32, and one training step leaves the
    moving statistics where the float32 step does (bf16 rounds the
    convolutions' inputs and outputs only: ~0.2% here)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 10, size=32)
    keras.utils.set_random_seed(0)
    init = models.build(
        "resnet20", input_shape=(16, 16, 3), num_classes=10
    ).get_weights()
    ref, loss_ref = _resnet20_step("float32", init, x, y)
    bf16, loss = _resnet20_step("mixed_bfloat16", init, x, y)
    assert {v.dtype for v in bf16.weights} == {"float32"}
    assert {
        v.dtype for v in bf16.optimizer.variables if "iteration" not in v.path
    } == {"float32"}
    assert abs(loss - loss_ref) < 1e-2 * loss_ref
    moving = [
        (a, b)
        for a, b in zip(
            bf16.non_trainable_variables, ref.non_trainable_variables
        )
        if "moving" in a.path
    ]
    assert len(moving) == 2 * 21  # 19 conv-BN pairs + 2 projection BNs
    for a, b in moving:
        error = np.linalg.norm(np.asarray(a) - np.asarray(b))
        assert error <= 2e-2 * np.linalg.norm(np.asarray(b)), a.path


# One model per builder (the ResNets share `_head`, the VGGs
# `_build_vgg`), at small sizes.
BUILDS = {
    "lenet": dict(input_shape=(28, 28, 1)),
    "simple_convnet": dict(input_shape=(28, 28, 1)),
    "resnet20": dict(input_shape=(32, 32, 3)),
    "resnet50": dict(input_shape=(32, 32, 3)),
    "vgg11": dict(input_shape=(32, 32, 3), fc_units=16),
    "alexnet": dict(input_shape=(67, 67, 3), fc_units=16),
    "slot_tagger": dict(vocab_size=30, num_intents=4, units=8),
}


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_bf16_models_have_float32_outputs(fake_machine, name):
    fake_machine(ZEN4_FLAGS)
    # "auto" even where the recipe opts out (the tagger), to check
    # the outputs of every builder under bf16.
    config = train.resolve_precision(recipe_for(name, mixed_precision="auto"))
    train._setup(config)
    model = models.build(name, num_classes=5, **BUILDS[name])
    policies = {layer.dtype_policy.name for layer in model.layers}
    assert "mixed_bfloat16" in policies
    for output in model.outputs:
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
        layer = output._keras_history.operation
        assert layer.compute_dtype == "float32", layer.name


def test_loss_is_float32_under_bf16(fake_machine, data_dir):
    fake_machine(ZEN4_FLAGS)
    config = train.resolve_precision(
        recipe_for("lenet", data_dir=data_dir, limit=256, eval_limit=256)
    )
    train._setup(config)
    _, _, info = train.load_data(config)
    model = train.build_model(config, info)
    train.compile_model(model, config, info, steps_per_epoch=2)
    x = np.random.RandomState(0).rand(4, 28, 28, 1).astype("float32")
    y = np.array([0, 1, 2, 3])
    loss = model.compute_loss(x=x, y=y, y_pred=model(x))
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert model.loss.dtype == "float32"


def test_none_forces_float32(fake_machine):
    fake_machine(ZEN4_FLAGS)
    config = train.resolve_precision(
        recipe_for("lenet", mixed_precision="none")
    )
    train._setup(config)
    model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_one_bf16_epoch_on_real_digits_learns_and_exports_float32(
    tmp_path, data_dir
):
    """The float32 LeNet test's bar (tests/test_train.py) under bf16, and
    the exported SavedModel computes in float32."""
    config = recipe_for(
        "lenet",
        data_dir=data_dir,
        **SHORT_LENET_RUN,
        mixed_precision="mixed_bfloat16",
        runs_root=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "saved_models"),
        log_format="quiet",
    )
    try:
        result = train.fit(config)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result.metrics["accuracy"] > 0.85
    with open(os.path.join(result.run_dir, "config.json")) as f:
        assert json.load(f)["mixed_precision"] == "mixed_bfloat16"
    final = keras.saving.load_model(result.model_path)
    assert {layer.dtype_policy.name for layer in final.layers} == {"float32"}
    checkpoint = keras.saving.load_model(
        os.path.join(result.run_dir, "checkpoints", "last.keras")
    )
    for a, b in zip(final.get_weights(), checkpoint.get_weights()):
        np.testing.assert_array_equal(a, b)

    types = _saved_model_types(result.export_path)
    assert "Conv2D" in types["ops"]
    assert "DT_FLOAT" in types["dtypes"]
    assert "DT_BFLOAT16" not in types["dtypes"]


def _saved_model_types(path):
    """Op types and `T`/`dtype` attributes in every function of a SavedModel."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    ops, dtypes = set(), set()
    for graph in (m.graph_def for m in sm.meta_graphs):
        nodes = list(graph.node)
        for fn in graph.library.function:
            nodes.extend(fn.node_def)
        for node in nodes:
            ops.add(node.op)
            for key in ("T", "dtype"):
                if key in node.attr and node.attr[key].type:
                    dtypes.add(types_pb2.DataType.Name(node.attr[key].type))
    return {"ops": ops, "dtypes": dtypes}


def test_cli_none_forces_float32_and_bad_choices_are_usage_errors(
    tmp_path, data_dir
):
    from click.testing import CliRunner

    from cli.main import cli

    run_dir = tmp_path / "run"
    args = ["fit", "lenet", "--data-dir", data_dir, "--limit", "256"]
    args += ["--eval-limit", "100", "--epochs", "1", "--no-export", "-q"]
    try:
        result = CliRunner().invoke(
            cli, args + ["--mixed-precision", "none", "--run-dir", str(run_dir)]
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result.exit_code == 0, result.output
    with open(run_dir / "config.json") as f:
        assert json.load(f)["mixed_precision"] == "none"
    bad = CliRunner().invoke(cli, args + ["--mixed-precision", "float8"])
    assert bad.exit_code == 2
    assert "'float8' is not one of 'auto', 'none'" in bad.output
