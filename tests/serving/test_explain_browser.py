"""The try-it page's "explain" toggle in headless Chromium: a dropped real
MNIST digit gets the server's SmoothGrad map drawn over it."""

import base64
import json
import os
import urllib.request

import numpy as np
import pytest

from tests.serving import test_ui_browser as page
from tests.serving import trained
from tests.serving.test_ui_browser import (
    by_id,
    open_model,
    png_file,
    requests_done,
    settle,
)

# The page tests' fixtures (a headless Chromium, the screenshot folder).
browser = page.browser
shots = page.shots


@pytest.fixture(scope="module")
def explain_server(data_dir, tmp_path_factory):
    from kerascnn.serving import ServeOptions, explain, make_server, ui

    base = trained.exported_models(data_dir, tmp_path_factory)
    srv = make_server(
        ServeOptions(
            model_base_path=base,
            rest_api_port=0,
            file_system_poll_wait_seconds=0,
        ),
        extra_routes=[*ui.routes(), *explain.routes(True)],
    )
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _rest_explain(url, b64):
    request = urllib.request.Request(
        f"{url}/v1/models/lenet:explain",
        data=json.dumps({"instances": [{"b64": b64}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["explanations"][0]  # Grad-CAM


def _heat_pixel(driver, row, col, size):
    """RGB of the heat canvas at model-input cell (row, col)."""
    return driver.execute_script(
        "const c = document.getElementById('heat');"
        "const s = c.width / arguments[2];"
        "return Array.from(c.getContext('2d').getImageData("
        "Math.floor((arguments[1] + 0.5) * s),"
        "Math.floor((arguments[0] + 0.5) * s), 1, 1).data.slice(0, 3));",
        int(row), int(col), int(size),
    )  # fmt: skip


def test_explain_toggle_overlays_the_server_map(
    explain_server, browser, data_dir, shots, tmp_path
):
    x, y = trained.mnist_split(data_dir, "test")
    open_model(browser, explain_server.url, "lenet")
    assert not by_id(browser, "heat").is_displayed()
    by_id(browser, "explain").click()
    index = 3
    path = png_file(x[index], tmp_path / "digit.png")
    before = requests_done(browser)
    by_id(browser, "file").send_keys(path)
    settle(browser, before)
    heat = by_id(browser, "heat")
    assert heat.is_displayed()
    browser.execute_script("arguments[0].scrollIntoView(false);", heat)
    browser.save_screenshot(os.path.join(shots, "5-explained-digit.png"))
    with open(path, "rb") as f:
        expected = _rest_explain(
            explain_server.url, base64.b64encode(f.read()).decode()
        )
    assert heat.get_attribute("data-class-index") == str(
        expected["class_index"]
    )
    assert heat.get_attribute("data-method") == "gradcam"  # the default
    assert expected["class_index"] == int(y[index])
    heat_map = np.asarray(expected["map"])
    hot = np.unravel_index(heat_map.argmax(), heat_map.shape)
    cold = np.unravel_index(heat_map.argmin(), heat_map.shape)
    r, _, b = _heat_pixel(browser, *hot, heat_map.shape[0])
    assert r > b + 40  # red where the map peaks
    r, _, b = _heat_pixel(browser, *cold, heat_map.shape[0])
    assert b > r + 20  # blue where it is zero
    # Unticking hides the map.
    by_id(browser, "explain").click()
    assert not by_id(browser, "heat").is_displayed()
