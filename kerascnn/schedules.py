"""Learning-rate schedules that Keras does not ship.

`OneCycle`: the one-cycle / triangular schedule of the fast-training
literature (Smith and Topin 2017, "Super-Convergence"; Page's ResNet-9 and
airbench on CIFAR-10): the rate rises from `peak / start_divisor` to
`peak` over the warm-up steps, then falls to `peak / end_divisor` at the
last step, linearly (a triangle) or along a half cosine.

It is a `keras.optimizers.schedules.LearningRateSchedule` registered with
Keras' serialization, so a compiled model saved with it (`model.keras`,
the run's backup) loads back with the same schedule.
"""

import math

import keras

from kerascnn import validation as v
from kerascnn.errors import InvalidArgumentError

ANNEALING = ("linear", "cosine")


@keras.saving.register_keras_serializable(package="kerascnn")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate: warm up to `peak`, then anneal.

    Args:
        peak: the highest learning rate, reached at step `warmup_steps`.
        total_steps: steps of the whole run; the rate is
            `peak / end_divisor` at step `total_steps` and after.
        warmup_steps: steps of the rise; must be in `[0, total_steps)`.
            `0` starts at `peak`.
        start_divisor: the first step's rate is `peak / start_divisor`.
            Defaults to `25` (Smith and Topin).
        end_divisor: the last step's rate is `peak / end_divisor`.
            Defaults to `1e4`.
        annealing: `"linear"` (a triangle) or `"cosine"` (a half cosine
            from `peak` down). The rise is always linear. Defaults to
            `"linear"`.

    Example:
        >>> s = OneCycle(0.1, total_steps=100, warmup_steps=20)
        >>> round(float(s(20)), 4), round(float(s(60)), 4)
        (0.1, 0.05)
    """

    def __init__(self, peak, total_steps, warmup_steps=0, start_divisor=25.0,
                 end_divisor=1e4, annealing="linear"):  # fmt: skip
        v.check_positive_number("peak", peak)
        v.check_positive_int("total_steps", total_steps)
        v.check_positive_int("warmup_steps", warmup_steps, minimum=0)
        if warmup_steps >= total_steps:
            raise InvalidArgumentError(
                "`warmup_steps` must be in [0, total_steps). Received: "
                f"warmup_steps={warmup_steps!r}, total_steps={total_steps!r}"
            )
        for name, value in (
            ("start_divisor", start_divisor),
            ("end_divisor", end_divisor),
        ):
            v.check_positive_number(name, value)
        v.check_choice("annealing", annealing, ANNEALING)
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.start_divisor = float(start_divisor)
        self.end_divisor = float(end_divisor)
        self.annealing = annealing

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        start = self.peak / self.start_divisor
        end = self.peak / self.end_divisor
        warm = float(max(self.warmup_steps, 1))
        rise = start + (self.peak - start) * ops.minimum(step / warm, 1.0)
        fall_steps = float(self.total_steps - self.warmup_steps)
        done = ops.clip((step - self.warmup_steps) / fall_steps, 0.0, 1.0)
        if self.annealing == "cosine":
            done = 0.5 * (1.0 - ops.cos(math.pi * done))
        fall = self.peak + (end - self.peak) * done
        return ops.where(step < self.warmup_steps, rise, fall)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "start_divisor": self.start_divisor,
            "end_divisor": self.end_divisor,
            "annealing": self.annealing,
        }
