"""Prometheus metrics, served at TF Serving's `/monitoring/prometheus/metrics`.

Each `ModelServer` owns its own `CollectorRegistry`, so several servers
(in tests, say) never clash. Names carry the `kerascnn_serving_` prefix:

    requests_total{model, version, signature, code, api, protocol}
        counter; api: predict, classify, regress; protocol: rest, grpc,
        v2-rest, v2-grpc (the Open Inference Protocol), or python for
        `ModelServer` calls without a front end
    request_latency_seconds{model, signature}         histogram
    batch_size{model, signature}                      histogram (rows)
    queue_depth{model}                                gauge (queued+running)
    load_failures_total{model, version}               counter
    model_versions{model, state}                      gauge

Label values come from the server, never from a client: `model` is a
served model's name ("unknown" for any other name a request gives),
`version` and `signature` are the loaded version's. The request series
are bounded (`max_series`); past the bound, requests are counted in one
series whose labels are all "other".
"""

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

PREFIX = "kerascnn_serving"
LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    30,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
MAX_SERIES = 2000
OTHER = "other"


class Metrics:
    """The serving metrics of one `ModelServer`.

    Args:
        max_series: most label sets of the request counter and latency
            histogram; more are counted under `"other"`.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_series=MAX_SERIES):
        self.max_series = int(max_series)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Inference requests by model, version, signature, HTTP code, "
            "API and protocol.",
            ["model", "version", "signature", "code", "api", "protocol"],
            registry=r,
        )
        self.latency = Histogram(
            f"{PREFIX}_request_latency_seconds",
            "Predict latency from arrival to answer.",
            ["model", "signature"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Rows per model call (1 without batching).",
            ["model", "signature"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth",
            "Requests queued or running per model.",
            ["model"],
            registry=r,
        )
        self.load_failures = Counter(
            f"{PREFIX}_load_failures",
            "Failed attempts to load a model version.",
            ["model", "version"],
            registry=r,
        )
        self.versions = Gauge(
            f"{PREFIX}_model_versions",
            "Model versions by TF Serving state.",
            ["model", "state"],
            registry=r,
        )
        self._request_children = {}
        self._children = {}

    def observe_request(
        self,
        model,
        version,
        signature,
        code,
        seconds,
        api="predict",
        protocol="python",
    ):
        key = (model, version, signature, code, api, protocol)
        children = self._request_children.get(key)
        if children is None and (
            len(self._request_children) >= self.max_series - 1
        ):
            key = (OTHER,) * 6
            model, version, signature, code, api, protocol = key
            children = self._request_children.get(key)
        if children is None:
            labels = (
                model,
                str(version or ""),
                signature or "",
                str(code),
                api,
                protocol,
            )
            children = self._request_children[key] = (
                self.requests.labels(*labels),
                self.latency.labels(model, signature or ""),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, model, signature, task_rows):
        self._child(self.batch_size, model, signature).observe(sum(task_rows))

    def set_queue_depth(self, model, depth):
        self._child(self.queue_depth, model).set(depth)

    def _child(self, metric, *labels):
        """`metric.labels(*labels)`, looked up once per label set: the
        lookup (a lock and label checks) would cost more than the
        update on every request."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self):
        """The text exposition format, as bytes."""
        return generate_latest(self.registry)
