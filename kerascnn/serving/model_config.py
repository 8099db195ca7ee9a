"""Which models a server serves: a base path, or TF Serving's config file.

`discover_models` turns a folder (one model's versions, or a folder of
model folders) into `ModelConfig`s; `read_model_config_file` reads TF
Serving's `--model_config_file` text format (`model_config_list`) with
its own protos.
"""

import dataclasses
import os

from kerascnn.export import layout
from kerascnn.serving.errors import ServingError

VERSION_POLICIES = ("latest", "all", "specific")


@dataclasses.dataclass
class ModelConfig:
    """One served model (an entry of TF Serving's `model_config_list`).

    Attributes:
        name: the model name in URLs.
        base_path: the folder holding its integer versions.
        policy: `"latest"`, `"all"` or `"specific"`.
        num_versions: how many of the newest versions `"latest"` serves.
        versions: the versions `"specific"` serves.
        labels: `{label: version}` (TF Serving's `version_labels`), so
            clients can ask for `/labels/stable` instead of a number.
    """

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.policy not in VERSION_POLICIES:
            raise ServingError(
                f"version_policy must be one of {VERSION_POLICIES}. "
                f"Received: version_policy={self.policy!r}"
            )
        self.base_path = os.path.abspath(os.fspath(self.base_path))


def discover_models(base_path, policy="latest"):
    """`ModelConfig`s for `base_path`: one model's folder of versions, or
    a folder of model folders (hidden ones skipped)."""
    if layout.list_versions(base_path, complete=False):
        return [ModelConfig(os.path.basename(base_path), base_path, policy)]
    configs = []
    for name in sorted(os.listdir(base_path)):
        path = os.path.join(base_path, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        if layout.list_versions(path, complete=False):
            configs.append(ModelConfig(name, path, policy))
    return configs


def read_model_config_file(path):
    """`ModelConfig`s from TF Serving's `--model_config_file` text format.

    model_config_list {
      config { name: "lenet" base_path: "/models/lenet"
               model_platform: "tensorflow"
               model_version_policy { specific { versions: 1 versions: 2 } }
               version_labels { key: "stable" value: 1 }
               version_labels { key: "canary" value: 2 } }
    }
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        with open(path) as f:
            text = f.read()
        config = text_format.Parse(
            text, model_server_config_pb2.ModelServerConfig()
        )
    except (OSError, text_format.ParseError) as e:
        raise ServingError(f"Cannot read model config {path!r}: {e}") from None
    configs = []
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ServingError(
                f"{path}: every config needs a name and a base_path."
            )
        policy = entry.model_version_policy
        which = policy.WhichOneof("policy_choice") or "latest"
        base = entry.base_path
        if not os.path.isabs(base):
            base = os.path.join(os.path.dirname(os.path.abspath(path)), base)
        configs.append(
            ModelConfig(
                entry.name,
                base,
                which,
                num_versions=max(1, policy.latest.num_versions or 1),
                versions=tuple(policy.specific.versions),
                labels=dict(entry.version_labels),
            )
        )
    if not configs:
        raise ServingError(f"{path}: model_config_list has no config.")
    return configs
