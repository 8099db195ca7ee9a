"""ONNX and OpenVINO exports, each run in its own runtime on real data.

LeNet (trained on real MNIST), ResNet-20 with both shortcut options and
AlexNet with its LRN layer (on real CIFAR-10 test images) and the joint
slot tagger (real ATIS test sentences) go through `export(format=...)`;
the file is then loaded again by `onnxruntime.InferenceSession` /
`openvino.Core().compile_model` and must name its tensors, take any
batch size, and compute what Keras computes.
"""

import os

import numpy as np
import pytest

from kerascnn.errors import ExportError
from kerascnn.metadata import load_model_and_metadata
from kerascnn.tasks.sequence_tagging.tagging import decode_tags
from tests.helpers import export, save_run

RUNTIMES = ("onnx", "openvino")
CIFAR_PREPROCESSING = {
    "scale": 1 / 255,
    "mean": [0.4914, 0.4822, 0.4465],
    "std": [0.247, 0.2435, 0.2616],
    "channels": 3,
    "image_size": [32, 32],
}
CIFAR_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def _require(runtime):
    pytest.importorskip("onnxruntime" if runtime == "onnx" else "openvino")
    if runtime == "openvino":
        pytest.importorskip("scipy")  # Keras' OpenVINO exporter imports it


def run_artifact(runtime, path, x):
    """`{output name: array}` from the artifact in its own runtime."""
    if runtime == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        (feed,) = session.get_inputs()
        return feed.name, dict(zip(names, session.run(names, {feed.name: x})))
    import openvino as ov

    compiled = ov.Core().compile_model(
        path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    results = compiled(x)
    (feed,) = compiled.inputs
    return feed.get_any_name(), {
        p.get_any_name(): np.asarray(v) for p, v in results.items()
    }


@pytest.fixture(scope="module")
def cifar_runs(tmp_path_factory):
    """Untrained ResNet-20 (both shortcuts) and small AlexNet run dirs."""
    import keras

    from kerascnn import models
    from kerascnn.metadata import ModelMetadata

    root = tmp_path_factory.mktemp("cifar_runs")
    builds = {
        "resnet20": dict(shortcut="projection"),
        "resnet20_zero_pad": dict(shortcut="zero_pad"),
        "alexnet": dict(fc_units=16),
    }
    runs = {}
    for key, options in builds.items():
        keras.utils.set_random_seed(3)
        arch = key.split("_")[0]
        model = models.build(
            arch, input_shape=(32, 32, 3), num_classes=10, **options
        )
        meta = ModelMetadata(
            model=arch,
            dataset="cifar10",
            input_shape=(32, 32, 3),
            class_names=CIFAR_CLASSES,
            preprocessing=CIFAR_PREPROCESSING,
        )
        runs[key] = save_run(model, meta, root / key)
    return runs


def _check_classifier(runtime, result, x_shape):
    """Names, dynamic batch and agreement of an image classifier export."""
    report = result.verification
    assert report.artifact.artifact == runtime
    assert report.artifact.max_diff <= 1e-4
    assert report.artifact.accuracy == report.keras.accuracy
    x = np.random.default_rng(0).normal(size=(3, *x_shape)).astype("float32")
    for batch in (1, 3):  # the batch axis is free
        name, out = run_artifact(runtime, result.path, x[:batch])
        assert name == "images"
        assert out["probabilities"].shape == (batch, 10)
        assert out["class_ids"].dtype == np.int64
        np.testing.assert_array_equal(
            out["class_ids"], out["probabilities"].argmax(-1)
        )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_lenet_round_trip_on_real_mnist(runtime, lenet_run, tmp_path):
    _require(runtime)
    result = export(
        lenet_run, format=runtime, base_dir=tmp_path, verify_examples=200
    )
    assert result.verified_on == "mnist test split (200 examples)"
    assert result.verification.keras.accuracy > 0.5  # a trained model
    _check_classifier(runtime, result, (28, 28, 1))
    if runtime == "onnx":
        assert result.path == str(tmp_path / "lenet" / "lenet.onnx")
        assert result.opset == 17
    else:
        folder = tmp_path / "lenet" / "openvino"
        assert result.path == str(folder / "lenet.xml")
        assert sorted(os.listdir(folder)) == [
            "lenet.bin",
            "lenet.xml",
            "metadata.json",
        ]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("key", ["resnet20", "resnet20_zero_pad", "alexnet"])
def test_cifar_models_round_trip(runtime, key, cifar_runs, data_dir, tmp_path):
    _require(runtime)
    result = export(
        cifar_runs[key],
        format=runtime,
        base_dir=tmp_path,
        name=key,
        verify_examples=16,
        data_dir=data_dir,
    )
    assert result.verified_on == "cifar10 test split (16 examples)"
    _check_classifier(runtime, result, (32, 32, 3))


def _artifact_ops(runtime, path):
    if runtime == "onnx":
        import onnx

        return {n.op_type for n in onnx.load(path).graph.node}
    import openvino as ov

    return {op.get_type_name() for op in ov.Core().read_model(path).get_ops()}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_alexnet_lrn_is_one_native_op(runtime, cifar_runs, tmp_path):
    """LRN converts to the runtime's own LRN operator, not a custom op."""
    _require(runtime)
    result = export(
        cifar_runs["alexnet"],
        format=runtime,
        base_dir=tmp_path,
        verify=False,
    )
    assert "LRN" in _artifact_ops(runtime, result.path)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tagger_round_trip_on_real_atis(runtime, atis_run, tmp_path):
    _require(runtime)
    result = export(
        atis_run["run"], format=runtime, base_dir=tmp_path, verify_examples=60
    )
    report = result.verification
    assert result.verified_on == "atis test split (60 sentences)"
    assert report.artifact.max_diff <= 1e-4
    assert report.artifact.slot_f1 == report.keras.slot_f1
    assert report.artifact.accuracy == report.keras.accuracy > 0.5
    model, meta = load_model_and_metadata(atis_run["run"])
    tx, _ = atis_run["test"]
    for rows in (tx[:1], tx[:5]):  # batch and length axes are free
        name, out = run_artifact(runtime, result.path, rows.astype("int32"))
        assert name == "token_ids"
        # In-graph tag ids: kerascnn's constrained Viterbi on Keras' output.
        lengths = (rows != 0).sum(1)
        expected = decode_tags(
            model.predict_on_batch(rows)["tags"], lengths, meta.class_names
        )
        assert [
            [meta.class_names[i] for i in ids[:n]]
            for ids, n in zip(out["tag_ids"], lengths)
        ] == expected
        assert (out["tag_ids"][rows == 0] == 0).all()
        assert out["tag_probabilities"].shape == (
            len(rows),
            rows.shape[1],
            len(atis_run["tags"]),
        )
        assert out["intent_probabilities"].shape == (
            len(rows),
            len(atis_run["intents"]),
        )
        np.testing.assert_array_equal(
            out["intent_ids"], out["intent_probabilities"].argmax(-1)
        )


# === Atomic placement ===


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_failed_verification_places_nothing(
    runtime, lenet_run, mnist_test, tmp_path, monkeypatch
):
    _require(runtime)
    from kerascnn.export import verify

    monkeypatch.setattr(verify, "SAVED_MODEL_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="Verification failed: "):
        export(
            lenet_run, format=runtime, base_dir=tmp_path, examples=mnist_test
        )
    # No artifact, no temp file, no card: nothing half-written.
    model_dir = tmp_path / "lenet"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def test_corrupted_onnx_never_visible(
    lenet_run, mnist_test, tmp_path, monkeypatch
):
    """A truncated file fails in ONNX Runtime; the old file stays."""
    _require("onnx")
    from kerascnn.export import onnx as onnx_export

    first = export(
        lenet_run, format="onnx", base_dir=tmp_path, examples=mnist_test
    )
    with open(first.path, "rb") as f:
        good = f.read()
    convert = onnx_export.convert
    monkeypatch.setattr(
        onnx_export,
        "convert",
        lambda *a, **k: convert(*a, **k)[:5000],
    )
    with pytest.raises(ExportError, match="Verification failed") as error:
        export(
            lenet_run,
            format="onnx",
            base_dir=tmp_path,
            examples=mnist_test,
            overwrite=True,
        )
    assert "\n" not in str(error.value)
    with open(first.path, "rb") as f:
        assert f.read() == good
    assert sorted(os.listdir(tmp_path / "lenet")) == [
        "MODEL_CARD.md",
        "lenet.onnx",
        "lenet.onnx.json",
        "model_card.json",
    ]


def test_existing_openvino_folder_needs_overwrite(
    lenet_run, mnist_test, tmp_path
):
    _require("openvino")
    export(lenet_run, format="openvino", base_dir=tmp_path, verify=False)
    with pytest.raises(ExportError, match="already exists"):
        export(lenet_run, format="openvino", base_dir=tmp_path, verify=False)
    again = export(
        lenet_run,
        format="openvino",
        base_dir=tmp_path,
        examples=mnist_test,
        overwrite=True,
    )
    assert again.verification.artifact.max_diff <= 1e-4


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_mixed_precision_model_exports_its_float32_twin(
    runtime, mnist_test, tmp_path
):
    """ONNX Runtime has no bfloat16 Conv: a bf16 LeNet exports at float32."""
    _require(runtime)
    import keras

    from kerascnn import models
    from kerascnn.export import named_io
    from kerascnn.metadata import ModelMetadata
    from tests.export.conftest import MNIST_CLASSES

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    meta = ModelMetadata(
        model="lenet",
        dataset="mnist",
        input_shape=(28, 28, 1),
        class_names=MNIST_CLASSES,
    )
    run = save_run(model, meta, tmp_path / "run")
    loaded, _ = load_model_and_metadata(run)
    assert not named_io.is_float32(loaded)  # the run computes in bf16
    result = export(
        run, format=runtime, base_dir=tmp_path / "out", examples=mnist_test
    )
    assert result.verification.artifact.max_diff <= 1e-4
    assert named_io.is_float32(named_io.float32_model(loaded))


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_zoo_model_converts(runtime):
    """Each registered model at its smallest input, random inputs: the
    artifact matches Keras to 1e-4 (slow: VGG/ResNet-152 take minutes)."""
    _require(runtime)
    import tempfile

    from kerascnn import models, tasks
    from kerascnn.export import named_io, verify
    from kerascnn.export import onnx as onnx_export
    from kerascnn.export import openvino as openvino_export
    from kerascnn.metadata import ModelMetadata

    rng = np.random.default_rng(0)
    for name in models.list_models():
        info = models.get_model_info(name)
        task = tasks.get_task(info.task)
        if tasks.takes(info.task, "text"):
            model = models.build(
                name,
                input_shape=(None,),
                num_classes=5,
                vocab_size=30,
                num_intents=3,
            )
            x = rng.integers(1, 30, size=(2, 7)).astype("int32")
        else:
            shape = info.min_input_shape or info.default_input_shape
            model = models.build(name, input_shape=shape, num_classes=10)
            x = rng.random((2, *shape), dtype=np.float32)
        meta = ModelMetadata(model=name, task=task.name)
        named = named_io.wrap(model, task, meta)
        reference = task.compared_outputs(verify.keras_runner(model)(x))
        if runtime == "onnx":
            run = verify.onnx_runner(onnx_export.convert(named))
            outputs = run(x)
        else:
            with tempfile.TemporaryDirectory() as folder:
                ir = openvino_export.convert(named)
                openvino_export.write_ir(ir, {}, folder, name)
                xml = openvino_export.xml_path(folder, name)
                outputs = verify.openvino_runner(xml)(x)
        outputs = task.compared_outputs(outputs)
        diff = verify.max_difference(reference, outputs)
        assert diff <= 1e-4, (name, diff)


def test_cli_format_onnx_prints_the_table_and_the_card(lenet_run, tmp_path):
    _require("onnx")
    from click.testing import CliRunner

    from cli.export_cli import export_command

    runner = CliRunner()
    args = [lenet_run, "-b", str(tmp_path), "--verify-examples", "50"]
    result = runner.invoke(export_command, [*args, "--format", "onnx"])
    assert result.exit_code == 0, result.output
    plan, *lines = result.output.splitlines()
    assert plan == (
        f"Exporting {lenet_run} as ONNX (converting, verifying on up to 50 "
        "examples)..."
    )
    assert lines[0].split() == [
        "artifact",
        "size",
        "accuracy",
        "max",
        "diff",
        "latency/ex",
    ]
    assert lines[2].startswith("onnx ")
    assert "(verified on mnist test split (50 examples))" in lines
    size = os.path.getsize(tmp_path / "lenet" / "lenet.onnx")
    assert (
        f"Exported lenet to {tmp_path / 'lenet' / 'lenet.onnx'} "
        f"({size:,} bytes, opset 17)"
    ) in lines
    assert f"Model card: {tmp_path / 'lenet' / 'MODEL_CARD.md'}" in lines
    clash = runner.invoke(export_command, [*args, "--tflite", "-f", "onnx"])
    assert clash.exit_code == 2
    assert "--tflite contradicts --format onnx." in clash.output
