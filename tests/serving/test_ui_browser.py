"""The try-it page in a real headless browser (Debian's Chromium).

Selenium drives /usr/bin/chromium through Debian's chromedriver; nothing
is downloaded. The server is `kerascnn serve`'s REST server with the page
on, over a LeNet and a slot tagger trained on real data
(tests/serving/trained.py). The tests draw real MNIST test digits on the
pad stroke by stroke, drop a real digit as a PNG file, type an ATIS test
sentence, and read the answers from the page. A screenshot of each state
goes to `$KERASCNN_UI_SCREENSHOTS` (default: pytest's tmp dir).
"""

import base64
import json
import os
import re
import shutil
import urllib.request

import numpy as np
import pytest

from tests.serving import trained

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,900",
)
PAD_SCALE = 10  # the 280x280 pad draws a 28x28 digit at 10x
INK = 128  # pixels at least this bright are traced with the pen

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed"
)
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        "No browser: the page tests need Debian's chromium and "
        "chromium-driver (apt-get install chromium chromium-driver).",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    from kerascnn.serving import ServeOptions, make_server, ui

    base = trained.exported_models(data_dir, tmp_path_factory)
    srv = make_server(
        ServeOptions(
            model_base_path=base,
            rest_api_port=0,
            file_system_poll_wait_seconds=0,
        ),
        extra_routes=ui.routes(),
    )
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Folder for the screenshots (a test artifact)."""
    path = os.environ.get("KERASCNN_UI_SCREENSHOTS")
    if path:
        os.makedirs(path, exist_ok=True)
        return path
    return str(tmp_path_factory.mktemp("ui-screenshots"))


# === Driving the page ===


def by_id(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def body_data(driver, key):
    """A `data-*` attribute of <body>: the page's busy flag and counter."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{key}")


def requests_done(driver):
    return int(body_data(driver, "requests") or 0)


def wait_for(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def settle(driver, before):
    """Waits until a request after `before` finished; fails on errors."""
    wait_for(
        driver,
        lambda d: requests_done(d) > before and body_data(d, "busy") == "false",
    )
    error = by_id(driver, "error")
    assert not error.is_displayed(), error.text


def open_model(driver, url, name):
    driver.get(url + "/")
    wait_for(
        driver,
        lambda d: by_id(d, "model-list").find_elements(
            "css selector", f'button[data-model="{name}"]'
        ),
    )
    before = requests_done(driver)
    button = by_id(driver, "model-list").find_element(
        "css selector", f'button[data-model="{name}"]'
    )
    button.click()
    settle(driver, before)
    wait_for(driver, lambda d: by_id(d, "model-title").text.startswith(name))


def ink_runs(digit):
    """Horizontal runs `(row, first col, last col)` of inked pixels."""
    for row in range(digit.shape[0]):
        inked = np.flatnonzero(digit[row] >= INK)
        if not inked.size:
            continue
        breaks = np.flatnonzero(np.diff(inked) > 1)
        starts = np.concatenate([[inked[0]], inked[breaks + 1]])
        ends = np.concatenate([inked[breaks], [inked[-1]]])
        yield from ((row, int(a), int(b)) for a, b in zip(starts, ends))


def draw_digit(driver, digit):
    """Traces a 28x28 digit on the pad with the mouse, one run a stroke."""
    from selenium.webdriver.common.action_chains import ActionChains

    pad = by_id(driver, "pad")
    half = pad.size["width"] // 2
    scale = pad.size["width"] / digit.shape[1]

    def offset(row, col):
        return (
            int((col + 0.5) * scale) - half,
            int((row + 0.5) * scale) - half,
        )

    actions = ActionChains(driver, duration=0)
    for row, first, last in ink_runs(digit):
        actions.move_to_element_with_offset(pad, *offset(row, first))
        actions.click_and_hold()
        actions.move_to_element_with_offset(pad, *offset(row, last))
        actions.release()
    actions.perform()


def page_class(driver):
    return by_id(driver, "top-class").get_attribute("data-class")


def png_file(digit, path):
    import tensorflow as tf

    with open(path, "wb") as f:
        f.write(tf.io.encode_png(digit).numpy())
    return str(path)


def rest_predict(url, name, body):
    request = urllib.request.Request(
        f"{url}/v1/models/{name}:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["predictions"][0]


def _curl_example_runs(example, url, data_dir, tmp_path):
    """Pastes the page's curl line into bash (image.jpg: an MNIST digit)
    and checks the server's answer."""
    import shutil
    import subprocess

    if not shutil.which("curl"):
        return
    x, _ = trained.mnist_split(data_dir, "test")
    png_file(x[0], tmp_path / "image.jpg")  # PNG bytes: any name decodes
    result = subprocess.run(
        ["bash", "-c", example], cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"][0]["class_names"]


# === Tests ===


def test_page_is_served_offline_with_a_strict_policy(server):
    with urllib.request.urlopen(server.url + "/", timeout=10) as response:
        html = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "http://" not in html and "https://" not in html
    with urllib.request.urlopen(server.url + "/ui/models", timeout=10) as r:
        assert json.load(r) == {"models": ["lenet", "slot_tagger"]}


def test_drawn_and_dropped_mnist_digits_are_classified(
    server, browser, data_dir, shots, tmp_path
):
    x, y = trained.mnist_split(data_dir, "test")
    open_model(browser, server.url, "lenet")
    listed = by_id(browser, "model-list").text
    assert "lenet" in listed and "v1 available" in listed
    example = by_id(browser, "curl-example").get_attribute("textContent")
    assert example.endswith(
        f"| curl -s {server.url}/v1/models/lenet/versions/1:predict "
        "--data-binary @-"
    )
    assert "predict_images" in example and "base64 -w0 image.jpg" in example
    v2 = by_id(browser, "v2-example").get_attribute("textContent")
    host = server.url.split("//")[1]
    assert f'InferenceServerClient("{host}")' in v2
    assert 'InferInput("images", [1], "BYTES")' in v2
    assert 'client.infer("lenet", [images], model_version="1")' in v2
    _curl_example_runs(example, server.url, data_dir, tmp_path)
    info = by_id(browser, "model-info").text
    assert "predict_images" in info and "__saved_model_init_op" not in info
    assert by_id(browser, "pad").is_displayed()  # a digit model: one channel
    browser.save_screenshot(os.path.join(shots, "1-models.png"))

    drawn = {}
    for index in range(5):
        by_id(browser, "clear").click()
        before = requests_done(browser)
        draw_digit(browser, x[index, :, :, 0])
        settle(browser, before)
        assert (
            by_id(browser, "result").get_attribute("data-source") == "drawing"
        )
        drawn[index] = (int(y[index]), page_class(browser))
    browser.save_screenshot(os.path.join(shots, "2-drawn-digit.png"))
    # Tracing binarizes the digit and thickens its strokes a little, so
    # one miss in five is allowed; the dropped file below must be exact.
    right = sum(str(label) == got for label, got in drawn.values())
    assert right >= 4, drawn

    index = 7
    path = png_file(x[index], tmp_path / f"mnist-test-{index}.png")
    before = requests_done(browser)
    by_id(browser, "file").send_keys(path)
    settle(browser, before)
    browser.save_screenshot(os.path.join(shots, "3-dropped-digit.png"))
    with open(path, "rb") as f:
        b64 = base64.b64encode(f.read()).decode()
    rest = rest_predict(
        server.url,
        "lenet",
        {"signature_name": "predict_images", "instances": [{"b64": b64}]},
    )
    assert page_class(browser) == str(y[index]) == rest["class_names"]
    bars = by_id(browser, "bars").find_elements("css selector", "li")
    assert len(bars) == 5
    assert bars[0].get_attribute("data-class") == str(y[index])
    top = max(rest["probabilities"])
    assert bars[0].find_element("css selector", ".pct").text == (
        f"{100 * top:.1f}%"
    )


def test_tagger_shows_atis_slots_and_intent(server, browser, data_dir, shots):
    utterance = trained.atis_split(data_dir, "test")[0]
    sentence = " ".join(utterance.words)
    open_model(browser, server.url, "slot_tagger")
    field = by_id(browser, "sentence")
    field.clear()
    field.send_keys(sentence)
    before = requests_done(browser)
    field.submit()
    settle(browser, before)
    browser.save_screenshot(os.path.join(shots, "4-tagged-sentence.png"))

    tokens = by_id(browser, "tokens").find_elements("css selector", ".token")
    shown = [
        (
            t.find_element("css selector", ".word").text,
            t.get_attribute("data-tag"),
        )
        for t in tokens
    ]
    assert [w for w, _ in shown] == list(utterance.words)
    gold_slots = {
        (w, t) for w, t in zip(utterance.words, utterance.tags) if t != "O"
    }
    found = gold_slots & set(shown)
    # The city slots of "... from charlotte to las vegas ... in st. louis".
    assert {
        ("charlotte", "B-fromloc.city_name"),
        ("las", "B-toloc.city_name"),
        ("vegas", "I-toloc.city_name"),
    } <= found, shown
    assert by_id(browser, "intent").text == utterance.intent
    legend = by_id(browser, "legend").text.split("\n")
    assert "fromloc.city_name" in legend and "toloc.city_name" in legend
    rest = rest_predict(
        server.url,
        "slot_tagger",
        {"signature_name": "predict_sentences", "instances": [sentence]},
    )
    assert [t for _, t in shown] == rest["tags"][: rest["lengths"]]
    # The page's v2 example, sent as it is shown.
    v2 = by_id(browser, "v2-example").get_attribute("textContent")
    url, body = re.fullmatch(r"curl -s (\S+) -d '(.*)'", v2).groups()
    assert url == f"{server.url}/v2/models/slot_tagger/versions/1/infer"
    request = urllib.request.Request(url, body.encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        outputs = {o["name"]: o for o in json.load(response)["outputs"]}
    assert outputs["tags"]["datatype"] == "BYTES"
    # "flights from boston to denver"
    assert outputs["tags"]["data"][2] == "B-fromloc.city_name"
    assert outputs["tags"]["data"][4] == "B-toloc.city_name"
