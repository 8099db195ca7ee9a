"""The one-cycle learning rate: its shape, its config, its errors."""

import numpy as np
import pytest

from kerascnn.errors import InvalidArgumentError
from kerascnn.schedules import OneCycle


def _rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_linear_one_cycle_rises_then_falls_to_the_end_rate():
    s = OneCycle(0.1, total_steps=100, warmup_steps=20, start_divisor=10,
                 end_divisor=1000)  # fmt: skip
    rates = _rates(s, range(0, 121))
    assert rates[0] == pytest.approx(0.01)
    assert rates[10] == pytest.approx(0.01 + 0.09 * 0.5)  # half-way up
    assert rates[20] == pytest.approx(0.1)  # the peak, once
    assert rates.max() == pytest.approx(0.1) and rates.argmax() == 20
    assert rates[60] == pytest.approx(0.1 + (1e-4 - 0.1) * 0.5)  # linear
    assert rates[100] == pytest.approx(1e-4, rel=1e-4)
    assert rates[120] == pytest.approx(1e-4, rel=1e-4)  # stays at the end rate
    assert np.all(np.diff(rates[:21]) > 0) and np.all(
        np.diff(rates[20:101]) < 0
    )


def test_cosine_annealing_and_no_warmup():
    s = OneCycle(1.0, total_steps=10, annealing="cosine", end_divisor=1e9)
    rates = _rates(s, range(11))
    assert rates[0] == pytest.approx(1.0)
    assert rates[5] == pytest.approx(0.5)
    assert rates[2] == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.2)))
    assert rates[10] == pytest.approx(0.0, abs=1e-6)


def test_config_round_trips_through_keras_serialization():
    import keras

    s = OneCycle(0.2, total_steps=50, warmup_steps=5, annealing="cosine")
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(s)
    )
    assert isinstance(restored, OneCycle)
    assert restored.get_config() == s.get_config()
    np.testing.assert_allclose(
        _rates(restored, range(0, 60, 7)), _rates(s, range(0, 60, 7))
    )


def test_a_compiled_model_with_the_schedule_saves_and_loads(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    s = OneCycle(0.05, total_steps=40, warmup_steps=4)
    model.compile(optimizer=keras.optimizers.SGD(s), loss="mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer._learning_rate, OneCycle)
    assert int(loaded.optimizer.iterations) == 1
    assert float(loaded.optimizer.learning_rate) == pytest.approx(
        float(s(int(loaded.optimizer.iterations)))
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"peak": 0.0}, "peak"),
        ({"total_steps": 0}, "total_steps"),
        ({"warmup_steps": 10}, r"warmup_steps.*\[0, total_steps\)"),
        ({"annealing": "step"}, "annealing"),
        ({"end_divisor": -1}, "end_divisor"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    args = {"peak": 0.1, "total_steps": 10, **kwargs}
    with pytest.raises(InvalidArgumentError, match=match):
        OneCycle(**args)
