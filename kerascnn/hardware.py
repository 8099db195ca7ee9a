"""What the machine can do fast: CPU flags, GPUs, and the precision to use.

`auto_precision()` picks the mixed-precision policy for `--mixed-precision
auto`:

* `"mixed_float16"` when a GPU with tensor cores (compute capability
  >= 7.0) is visible;
* `"mixed_bfloat16"` on a CPU with native bf16 arithmetic (the
  `avx512_bf16` or `amx_bf16` flag): oneDNN runs bf16 convolutions and
  matrix products in hardware there;
* `"float32"` otherwise: without those flags bf16 is emulated and slower
  than float32.

The feature checks read `/proc/cpuinfo` and `tf.config`; tests fake them
by passing `flags=` / `gpus=` or by monkeypatching `cpu_flags` and
`gpu_compute_capabilities`.
"""

import functools

from kerascnn.lazy import LazyModule

tf = LazyModule("tensorflow")

CPUINFO = "/proc/cpuinfo"
# CPU flags (as /proc/cpuinfo spells them) that mean native bf16 math.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Flags the benchmarks report.
REPORTED_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
TENSOR_CORE_CAPABILITY = (7, 0)
# The Keras mixed policies `auto_precision` may pick.
POLICIES = ("mixed_bfloat16", "mixed_float16")


def _cpuinfo_field(name, path=CPUINFO):
    """Value of the first `name : value` line of /proc/cpuinfo, or ''."""
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


@functools.lru_cache(maxsize=None)
def cpu_flags(path=CPUINFO):
    """The CPU's feature flags (lower case); empty when unknown."""
    text = _cpuinfo_field("flags", path) or _cpuinfo_field("Features", path)
    return frozenset(text.lower().split())


@functools.lru_cache(maxsize=None)
def cpu_model(path=CPUINFO):
    """The CPU model name, e.g. `"AMD EPYC 9B14"`, or the platform's."""
    import platform

    return _cpuinfo_field("model name", path) or platform.processor() or "?"


def has_native_bf16(flags=None):
    """Whether the CPU computes bf16 in hardware (AVX512_BF16 or AMX)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def gpu_compute_capabilities():
    """`(major, minor)` of each visible GPU (`None` when not reported)."""

    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        caps.append(details.get("compute_capability"))
    return caps


def auto_precision(flags=None, gpus=None):
    """The fastest policy that keeps accuracy on this machine (see module)."""
    gpus = gpu_compute_capabilities() if gpus is None else gpus
    if gpus:
        tensor_cores = all(
            cap is not None and tuple(cap) >= TENSOR_CORE_CAPABILITY
            for cap in gpus
        )
        return "mixed_float16" if tensor_cores else "float32"
    return "mixed_bfloat16" if has_native_bf16(flags) else "float32"


def resolve_precision(requested, flags=None, gpus=None):
    """Keras policy name for a `--mixed-precision` choice.

    `"auto"` asks `auto_precision`; `"none"`, `"float32"` and `None` mean
    float32; a policy name is kept as given.
    """
    if requested in (None, "none", "float32"):
        return "float32"
    if requested == "auto":
        return auto_precision(flags, gpus)
    return requested


def describe(flags=None):
    """CPU model and the flags that matter, for benchmark reports."""
    flags = cpu_flags() if flags is None else flags
    return {
        "cpu_model": cpu_model(),
        "flags": {f: f in flags for f in REPORTED_FLAGS},
        "native_bf16": has_native_bf16(flags),
    }
