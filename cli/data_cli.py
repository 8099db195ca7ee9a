"""`kerascnn data`: inspect data sets (`info`), look at them (`preview`)
and write them as TFRecord shards (`convert`).

TensorFlow is imported only when a command runs (the data modules are
`LazyModule`s), so `kerascnn --help` stays fast. Any `KerasCNNError`
becomes one line on stderr and exit 1.
"""

import os

import click

from cli.common import (
    INT_TUPLE,
    VALIDATION_SPLIT,
    VALIDATION_SPLIT_HELP,
    ProgressBar,
    format_shape,
    quiet_tensorflow,
    skip_bad_option,
    user_errors,
)
from kerascnn.data.sources.image_folder import FOLDER_VALIDATION_FRACTION
from kerascnn.lazy import LazyModule

# TensorFlow comes with these: loaded on first use, after the command
# called `quiet_tensorflow()`.
convert = LazyModule("kerascnn.data.convert")
pipeline = LazyModule("kerascnn.data.pipeline")
preview = LazyModule("kerascnn.data.preview")

# The one --data-dir of the data commands (info, preview, convert).
DATA_DIR_OPTION = click.option(
    "--data-dir",
    "-d",
    default=None,
    envvar="KERASCNN_DATA_DIR",
    help="Folder with local copies (default: $KERASCNN_DATA_DIR).",
)


@click.group("data", short_help="Inspect, preview and convert data sets.")
def data_group():
    """Inspect data sets: built-in names (mnist, fashion_mnist, kmnist,
    emnist/letters, cifar10, atis), tfds:<name>[:<config>], an image
    folder or an .npz file."""


def _held_out_line(sizes, validation_split):
    """Says how a data set without a test split is split, if it is."""
    if "test" in sizes or not sizes.get("validation"):
        return []
    # The rule's fraction: the sizes may count fewer (files skipped).
    share = validation_split or FOLDER_VALIDATION_FRACTION
    return [
        f"held out:    {share:.0%} of the images for validation (seeded; "
        "--validation-split); it stands in for the missing test split"
    ]


def _input_shape_text(info):
    if info.input_shape and info.input_shape[0] is None and info.storage:
        return info.storage  # an image folder of mixed sizes
    return format_shape(info.input_shape)


def _format_info(info, validation_split=None):
    lines = [
        f"name:        {info.name}",
        f"kind:        {info.kind}",
        f"source:      {info.source}",
        "splits:      "
        + ", ".join(f"{s} {n:,}" for s, n in info.split_sizes.items()),
        *_held_out_line(info.split_sizes, validation_split),
        f"input shape: {_input_shape_text(info)}",
        f"classes:     {info.num_classes}",
    ]
    names = info.class_names
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    lines.append(f"class names: {shown}")
    if info.preprocessing:
        p = info.preprocessing
        norm = "scale 1/255" + (
            f", mean {p['mean']}, std {p['std']}" if p.get("mean") else ""
        )
        lines.append(f"normalize:   {norm}")
    if info.augmentation:
        lines.append(f"augment:     {info.augmentation} (train)")
    if info.vocab is not None:
        lines.append(f"vocabulary:  {len(info.vocab):,} words (train only)")
        lines.append(f"intents:     {len(info.intent_names)}")
        lines.append(f"max length:  {info.max_length}")
    return "\n".join(lines)


@data_group.command("info", short_help="Sizes, classes, shapes, source.")
@click.argument("name")
@DATA_DIR_OPTION
@click.option(
    "--validation-split", type=VALIDATION_SPLIT, help=VALIDATION_SPLIT_HELP
)
@skip_bad_option(what="leave them out of the sizes")
def info_command(name, data_dir, validation_split, skip_bad):
    """Show split sizes, classes, input shape and where NAME was found.

    For an image folder, the first bytes of every file are checked (as
    fit does): a file that is empty or not image data stops the command,
    naming it, or with --skip-bad is skipped and left out of the sizes."""
    quiet_tensorflow()
    with user_errors():
        info = pipeline.get_info(
            name, "train", data_dir=data_dir,
            validation_size=validation_split, check_files=True,
            skip_bad=skip_bad,
        )  # fmt: skip
    click.echo(_format_info(info, validation_split))


@data_group.command("preview", short_help="Write a PNG grid of examples.")
@click.argument("name")
@click.option("--out", "-o", required=True, help="Output PNG path.")
@click.option(
    "--split", "-s", default="train", show_default=True,
    type=click.Choice(["train", "validation", "dev", "test"]),
    help="Split to show.",
)  # fmt: skip
@click.option(
    "--count", "-n", default=32, show_default=True,
    type=click.IntRange(1, 1024), help="Number of examples.",
)  # fmt: skip
@click.option(
    "--augment/--no-augment", default=False, show_default=True,
    help="Show training augmentation.",
)  # fmt: skip
@DATA_DIR_OPTION
def preview_command(name, out, split, count, augment, data_dir):
    """Write the first COUNT examples of NAME as a labeled PNG grid."""
    quiet_tensorflow()
    with user_errors():
        info = preview.save_preview(
            name, out, split=split, count=count, data_dir=data_dir,
            augment=augment,
        )  # fmt: skip
    shown = min(count, info.num_examples)  # less any file left out
    click.echo(f"Wrote {shown} {info.name} {split} examples to {out}")


@data_group.command("convert", short_help="Write TFRecord shards + manifest.")
@click.argument("source")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option(
    "--shards", "-n", type=click.IntRange(min=1),
    help="Shards of the largest split (default: one per 1,024 images).",
)  # fmt: skip
@click.option(
    "--image-size", type=INT_TUPLE, metavar="H,W",
    help="Resize (and re-encode) to H,W; default: keep the files' bytes.",
)  # fmt: skip
@click.option(
    "--quality", type=click.IntRange(1, 100), default=95, show_default=True,
    help="JPEG quality when re-encoding.",
)  # fmt: skip
@click.option(
    "--encoding", default="original", show_default=True,
    metavar="original|jpeg|png|raw",
    help="How images are stored: the files' own bytes (re-encoded only "
    "when resized), JPEG, PNG, or raw uint8 pixels (nothing to decode when "
    "read; H*W*C bytes per image, ~10x JPEG).",
)  # fmt: skip
@skip_bad_option(what="leave them out")
@DATA_DIR_OPTION
def convert_command(source, out_dir, shards, image_size, quality, encoding,
                    skip_bad, data_dir):  # fmt: skip
    """Write SOURCE (an image folder or any image data set name) as
    TFRecord shards of tf.train.Example plus manifest.json in OUT_DIR.

    \b
    kerascnn data convert /data/food101 /data/food101-shards --shards 64
    kerascnn fit resnet50 --dataset /data/food101-shards

    OUT_DIR appears only when complete (written aside, then renamed).
    """
    if image_size is not None and len(image_size) != 2:
        raise click.BadParameter("expected H,W", param_hint="--image-size")
    quiet_tensorflow()
    with user_errors():
        with ProgressBar("Converting") as progress:
            manifest = convert.convert(
                source, out_dir, shards=shards, image_size=image_size,
                quality=quality, encoding=encoding, data_dir=data_dir,
                skip_bad=skip_bad, progress=progress,
                note=lambda line: click.echo(line, err=True),
            )  # fmt: skip
    total = 0
    for split, entry in manifest["splits"].items():
        nbytes = sum(
            os.path.getsize(os.path.join(out_dir, shard["file"]))
            for shard in entry["shards"]
        )
        total += nbytes
        click.echo(
            f"{split}: {entry['count']:,} images in "
            f"{len(entry['shards'])} shard(s), {_mib(nbytes)}"
        )
    click.echo(
        f"Wrote {out_dir}, {_mib(total)} ({manifest['encoding']}; use it as "
        f"--dataset {out_dir})"
    )


def _mib(nbytes):
    return f"{nbytes / 2**20:,.1f} MiB"
