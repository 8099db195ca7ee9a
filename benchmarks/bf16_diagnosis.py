#!/usr/bin/env python3
"""Where does bf16 training differ from float32? One ResNet step, compared.

From the same initial weights and the same CIFAR-10 batch, runs one
training step of the recipe (loss, gradients, SGD with momentum and weight
decay) of a float32 model and of the same model under `mixed_bfloat16`,
and compares, as relative L2 errors against float32 (`|a - b| / |b|`):

* every layer's training-mode output (conv, BN, ReLU, add, pooling, head);
* the loss, the softmax probabilities and the weight-decay term;
* the gradient of every trainable variable, and the optimizer's update
  (`w_after - w_before`), per variable kind;
* the BN batch statistics (the moving averages after one step, whose
  change is `(1 - momentum) * (batch statistic - old value)`);
* the dtype of every variable, slot and moving statistic (float32 master
  weights?).

Then `--ablate` re-runs the bf16 step with one group of layers in float32
(BN, the head, the convolutions, the pooling) to show which one closes
which part of the gap. With `--steps N` both models also train N steps on
the same batches, and the script reports the loss trajectories and how far
the weights drift apart, beside the drift of two float32 runs whose only
difference is a bf16-sized rounding of the initial weights (the floor any
low-precision run pays, which SGD amplifies).

bf16 has an 8-bit significand: one rounding is a relative error of at most
2^-9 = 0.2% (RMS about 0.1%), so per-layer errors of 0.1-1% after a dozen
layers are the format, not a defect; a defect shows as a tensor far above
its neighbours, a float32 quantity that comes out with bf16's error
(moving statistics, the loss, the update), or a variable that is not
float32.

Example (prints one JSON object):

    python benchmarks/bf16_diagnosis.py --model resnet20 --batch-size 128 \\
        --ablate --steps 30
"""

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BF16_EPS = 2.0**-9  # half an ulp of bf16 at 1.0: one rounding, at most


def rel_err(a, b):
    """`|a - b| / |b|` in float64 (0 when both are zero)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom else 0.0


def load_batch(batch_size, data_dir, seed):
    """One augmented-free CIFAR-10 training batch as numpy arrays."""
    from kerascnn import data

    ds, _ = data.load(
        "cifar10",
        "train",
        data_dir=data_dir,
        batch_size=batch_size,
        shuffle=True,
        augment=False,
        limit=batch_size * 8,
        seed=seed,
    )
    batches = [(np.asarray(x), np.asarray(y)) for x, y in ds]
    return batches


def build(model_name, policy, weights=None, float32_layers=()):
    """The model under `policy`; layers whose class name is in
    `float32_layers` (or named "predictions") are forced to float32."""
    import keras

    from kerascnn import models
    from kerascnn.config import recipe_for

    options = recipe_for(model_name).model_options
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = models.build(
        model_name, input_shape=(32, 32, 3), num_classes=10, **options
    )
    keras.mixed_precision.set_global_policy("float32")
    for layer in model.layers:
        if type(layer).__name__ in float32_layers:
            layer.dtype_policy = "float32"
    if weights is not None:
        model.set_weights(weights)
    return model


def probe(model):
    """The same model with every layer's output as an extra output."""
    import keras

    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    return keras.Model(model.inputs, [layer.output for layer in layers]), [
        layer.name for layer in layers
    ]


def make_optimizer(model_name, steps):
    from kerascnn.config import recipe_for
    from kerascnn.optimizers import make_optimizer as recipe_optimizer

    # The recipe's schedule (warm-up included) compressed to `steps`.
    base = recipe_for(model_name)
    epochs = base.warmup_epochs + 1
    config = recipe_for(model_name, epochs=epochs)
    return recipe_optimizer(config, max(steps // epochs, 1)), config


def one_step(model, x, y, model_name):
    """Forward with every layer's output, loss, gradients, one SGD step."""
    import keras
    import tensorflow as tf

    probed, names = probe(model)
    opt, config = make_optimizer(model_name, 1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    before = [np.array(v.numpy()) for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        outs = probed(x, training=True)
        probs = outs[-1]
        loss = loss_fn(y, probs)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    after = [np.array(v.numpy()) for v in model.trainable_variables]
    return {
        "names": names,
        "outputs": [np.asarray(tf.cast(o, tf.float32)) for o in outs],
        "output_dtypes": [o.dtype.name for o in outs],
        "loss": float(loss),
        "loss_dtype": loss.dtype.name,
        "grads": [np.asarray(g) for g in grads],
        "grad_dtypes": [g.dtype.name for g in grads],
        "updates": [a - b for a, b in zip(after, before)],
        "var_names": [v.path for v in model.trainable_variables],
        "var_dtypes": sorted({v.dtype for v in model.weights}),
        "slot_dtypes": sorted({v.dtype for v in opt.variables}),
        "moving": {
            v.path: np.array(v.numpy())
            for v in model.non_trainable_variables
            if "moving" in v.path
        },
        "weight_decay": opt.weight_decay,
        "learning_rate": float(keras.ops.convert_to_numpy(opt.learning_rate)),
    }


def _kind(path):
    for kind in ("kernel", "gamma", "beta", "bias"):
        if path.endswith(kind):
            return kind
    return "other"


def compare_steps(ref, got):
    """Per-layer, per-variable and scalar relative errors got vs ref."""
    layers = {
        name: round(rel_err(a, b), 5)
        for name, a, b in zip(ref["names"], got["outputs"], ref["outputs"])
    }
    grads, updates = {}, {}
    for path, ga, gb, ua, ub in zip(
        ref["var_names"],
        got["grads"],
        ref["grads"],
        got["updates"],
        ref["updates"],
    ):
        grads[path] = round(rel_err(ga, gb), 5)
        updates[path] = round(rel_err(ua, ub), 5)
    by_kind = {}
    for path, err in grads.items():
        by_kind.setdefault(_kind(path), []).append(err)
    moving = {
        path: round(rel_err(got["moving"][path], ref["moving"][path]), 6)
        for path in ref["moving"]
    }
    stats = {}
    for kind in ("moving_mean", "moving_variance"):
        errs = [e for p, e in moving.items() if p.endswith(kind)]
        if errs:  # models with batch norm
            stats[kind] = {"median": float(np.median(errs)), "max": max(errs)}
    return {
        "loss": {
            "float32": ref["loss"],
            "bf16": got["loss"],
            "rel_err": abs(got["loss"] - ref["loss"]) / ref["loss"],
            "bf16_loss_dtype": got["loss_dtype"],
        },
        "probs_rel_err": layers[ref["names"][-1]],
        "layer_outputs_rel_err": layers,
        "layer_output_dtypes": dict(zip(got["names"], got["output_dtypes"])),
        "grads_rel_err_median_by_kind": {
            k: float(np.median(v)) for k, v in by_kind.items()
        },
        "grads_rel_err_max_by_kind": {k: max(v) for k, v in by_kind.items()},
        "grads_rel_err": grads,
        "update_rel_err_median": float(np.median(list(updates.values()))),
        "update_rel_err_max": max(updates.values()),
        "bn_moving_stats_rel_err": stats,
        "bf16_grad_dtypes": sorted(set(got["grad_dtypes"])),
        "bf16_variable_dtypes": got["var_dtypes"],
        "bf16_optimizer_slot_dtypes": got["slot_dtypes"],
        "weight_decay": got["weight_decay"],
    }


def summary(cmp):
    """The few numbers that tell the story (for ablation tables)."""
    layers = list(cmp["layer_outputs_rel_err"].values())
    return {
        "loss_rel_err": cmp["loss"]["rel_err"],
        "probs_rel_err": cmp["probs_rel_err"],
        "layer_output_rel_err_median": float(np.median(layers)),
        "grads_rel_err_median_by_kind": cmp["grads_rel_err_median_by_kind"],
        "update_rel_err_median": cmp["update_rel_err_median"],
        "bn_moving_stats_rel_err": cmp["bn_moving_stats_rel_err"],
    }


def train_steps(model, batches, model_name, steps):
    """`steps` recipe SGD steps on `batches` (cycled); losses, weights."""
    import keras
    import tensorflow as tf

    opt, _ = make_optimizer(model_name, steps)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        losses.append(float(step(x, y)))
    return losses, [np.array(w) for w in model.get_weights()]


def round_to_bf16(weights):
    import tensorflow as tf

    return [
        np.asarray(tf.cast(tf.cast(w, tf.bfloat16), tf.float32))
        for w in weights
    ]


def drift(model_name, weights, batches, steps):
    """Loss and weight drift after `steps` steps: bf16 and a float32 run
    from bf16-rounded initial weights, both against float32."""
    ref_losses, ref_w = train_steps(
        build(model_name, "float32", weights), batches, model_name, steps
    )
    runs = {
        "mixed_bfloat16": build(model_name, "mixed_bfloat16", weights),
        "float32_from_bf16_rounded_init": build(
            model_name, "float32", round_to_bf16(weights)
        ),
    }
    out = {"float32_losses": [round(v, 4) for v in ref_losses]}
    for name, model in runs.items():
        losses, w = train_steps(model, batches, model_name, steps)
        kernels = [rel_err(a, b) for a, b in zip(w, ref_w) if a.ndim > 1]
        out[name] = {
            "losses": [round(v, 4) for v in losses],
            "kernel_drift_rel_err_median": float(np.median(kernels)),
            "final_loss_minus_float32": losses[-1] - ref_losses[-1],
        }
    return out


def perturbed(weights, scale, seed=0):
    """`weights * (1 + scale * N(0, 1))`, elementwise."""
    rng = np.random.RandomState(seed)
    return [
        (w * (1 + scale * rng.standard_normal(w.shape))).astype(w.dtype)
        for w in weights
    ]


def references(model_name, weights, batches):
    """How much the float32 step itself moves under small changes: the
    scale against which bf16's error is judged.

    * `weights_perturbed_1e-6`: weights times (1 + 1e-6 noise), float32;
    * `weights_and_input_rounded_to_bf16`: only the stored weights and the
      input rounded to bf16, all arithmetic float32;
    * `next_batch`: the gradient of another batch of the same size (the
      noise SGD trains with anyway).
    """
    x, y = batches[0]
    ref = one_step(build(model_name, "float32", weights), x, y, model_name)
    cases = {
        "weights_perturbed_1e-6": (perturbed(weights, 1e-6), x, y),
        "weights_and_input_rounded_to_bf16": (
            round_to_bf16(weights),
            round_to_bf16([x])[0],
            y,
        ),
        "next_batch": (weights, *batches[1]),
    }
    out = {}
    for name, (w, xb, yb) in cases.items():
        got = one_step(build(model_name, "float32", w), xb, yb, model_name)
        out[name] = summary(compare_steps(ref, got))
    return out


def _while_body_ops(graph):
    """`{op type/dtype: count}` inside the while loops of a traced step
    (the per-time-step work of a recurrent layer), forward and backward."""
    import tensorflow as tf

    counts = {}
    for fn in graph.as_graph_def().library.function:
        # Grappler's "_rewritten" copies repeat a body: count it once.
        fn_name = fn.signature.name
        if "while_body" not in fn_name or fn_name.endswith("_rewritten"):
            continue
        for node in fn.node_def:
            attr = node.attr.get("T") or node.attr.get("DstT")
            dtype = attr.type if attr is not None else 0
            dtype_name = tf.dtypes.as_dtype(dtype).name if dtype else "-"
            key = f"{node.op}/{dtype_name}"
            counts[key] = counts.get(key, 0) + 1
    wanted = (
        "MatMul",
        "Cast",
        "Sigmoid",
        "Tanh",
        "Mul",
        "AddV2",
        "BiasAdd",
        "SigmoidGrad",
        "TanhGrad",
    )
    return {
        k: v for k, v in sorted(counts.items()) if k.split("/")[0] in wanted
    }


def lstm_kernels(batch=16, length=20, units=200, embedding=200, rounds=9):
    """Why the BiLSTM tagger's steps are slower in bf16 on a CPU.

    Builds the recipe's tagger layer shape (BiLSTM, 200 units, batch 16)
    once per policy, traces one training step each, and reports the op
    types (with dtypes) inside the per-time-step while loop. Times are
    medians over `rounds` interleaved rounds (float32 and bf16 back to
    back): the training step, one time step's recurrent product (batch x
    units @ units x 4 units), and one cast of that kernel to bf16, which
    the bf16 loop repeats at every time step.
    """
    import keras
    import tensorflow as tf

    x = np.random.RandomState(0).randn(batch, length, embedding)
    x = x.astype("float32")
    timed, out = {}, {}
    for policy in ("float32", "mixed_bfloat16"):
        step = _bilstm_step(policy, units, x.shape)
        dtype = "bfloat16" if policy != "float32" else "float32"
        matmul = _unrolled(
            lambda a, w: tf.matmul(a, w),
            (batch, units),
            (units, 4 * units),
            dtype,
        )
        cast = _unrolled(
            lambda a, w: tf.cast(a, "bfloat16"),
            (units, 4 * units),
            (1,),
            "float32",
        )
        timed[policy] = {
            "step_ms": lambda step=step: step(x),
            "recurrent_matmul_us": matmul,
            "kernel_cast_to_bf16_us": cast,
        }
        graph = step.get_concrete_function(
            tf.TensorSpec(x.shape, tf.float32)
        ).graph
        out[policy] = {
            "while_body_ops": _while_body_ops(graph),
            # Keras' fused (cuDNN) LSTM needs a GPU; else the generic loop.
            "keras_fused_lstm_on_this_machine": bool(
                tf.config.list_physical_devices("GPU")
            ),
        }
    del keras
    for fns in timed.values():
        for fn in fns.values():
            fn()  # trace and warm up
    samples = {p: {k: [] for k in fns} for p, fns in timed.items()}
    for _ in range(rounds):
        for policy, fns in timed.items():
            for key, fn in fns.items():
                start = time.perf_counter()
                fn()
                seconds = time.perf_counter() - start
                scale = 1e3 if key.endswith("_ms") else 1e6 / UNROLLED
                samples[policy][key].append(seconds * scale)
    for policy, by_key in samples.items():
        for key, values in by_key.items():
            out[policy][key] = round(float(np.median(values)), 2)
    out["bf16_over_float32_step"] = round(
        out["mixed_bfloat16"]["step_ms"] / out["float32"]["step_ms"], 2
    )
    return out


def _bilstm_step(policy, units, shape):
    """A traced training step of a fresh BiLSTM built under `policy`."""
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(policy)
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(units, return_sequences=True)
    )
    keras.mixed_precision.set_global_policy("float32")
    layer.build(shape)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            y = tf.cast(layer(x, training=True), "float32")
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, layer.trainable_variables)

    return step


UNROLLED = 50


def _unrolled(op, a_shape, b_shape, dtype):
    """A call running `op(a_i, b)` on 50 inputs (the call overhead is
    shared); time it and divide by `UNROLLED`."""
    import tensorflow as tf

    rng = np.random.RandomState(1)
    a = [tf.cast(rng.randn(*a_shape), dtype) for _ in range(UNROLLED)]
    b = tf.cast(rng.randn(*b_shape), dtype)
    fn = tf.function(lambda a, b: [op(x, b) for x in a])
    return lambda: fn(a, b)


ABLATIONS = {
    "bn_float32": ("FusedBatchNormalization", "BatchNormalization"),
    "conv_float32": ("Conv2D",),
    "pool_float32": ("GlobalAveragePooling2D",),
    "add_relu_float32": ("Add", "Activation"),
    # Dropout draws its mask in the compute dtype: under bf16 the masks
    # differ from float32's (not a precision loss, another random draw).
    "dropout_float32": ("Dropout",),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablate", action="store_true")
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        help="also train N steps and report the drift",
    )
    p.add_argument(
        "--per-layer",
        action="store_true",
        help="print every layer's and variable's error",
    )
    p.add_argument(
        "--lstm",
        action="store_true",
        help="only the BiLSTM tagger's kernels, float32 vs bf16",
    )
    args = p.parse_args(argv)
    if args.lstm:
        print(json.dumps({"lstm_kernels": lstm_kernels()}, indent=1))
        return

    import keras

    from kerascnn import hardware

    start = time.time()
    batches = load_batch(args.batch_size, args.data_dir, args.seed)
    x, y = batches[0]
    ref_model = build(args.model, "float32")
    weights = ref_model.get_weights()
    ref = one_step(ref_model, x, y, args.model)
    bf16 = one_step(
        build(args.model, "mixed_bfloat16", weights), x, y, args.model
    )
    cmp = compare_steps(ref, bf16)
    result = {
        "model": args.model,
        "batch_size": args.batch_size,
        "keras": keras.__version__,
        "hardware": hardware.describe(),
        "bf16_one_rounding_rel_err": BF16_EPS,
        "bf16_vs_float32": cmp
        if args.per_layer
        else {
            **summary(cmp),
            "bf16_variable_dtypes": cmp["bf16_variable_dtypes"],
            "bf16_optimizer_slot_dtypes": cmp["bf16_optimizer_slot_dtypes"],
            "bf16_grad_dtypes": cmp["bf16_grad_dtypes"],
            "bf16_loss_dtype": cmp["loss"]["bf16_loss_dtype"],
            "worst_layers": sorted(
                cmp["layer_outputs_rel_err"].items(), key=lambda kv: -kv[1]
            )[:5],
        },
    }
    result["float32_references"] = references(args.model, weights, batches)
    if args.ablate:
        result["ablations"] = {}
        for name, classes in ABLATIONS.items():
            model = build(args.model, "mixed_bfloat16", weights, classes)
            got = one_step(model, x, y, args.model)
            result["ablations"][name] = summary(compare_steps(ref, got))
    if args.steps:
        result["drift"] = drift(args.model, weights, batches, args.steps)
    result["seconds"] = round(time.time() - start, 1)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
