"""Regenerates `inference_pb.py`, the Open Inference Protocol's gRPC messages.

    python -m kerascnn.serving.v2.generate_proto     # needs tritonclient[grpc]
    ruff format kerascnn/serving/v2/inference_pb.py

The source is Triton's `grpc_service.proto` (triton-inference-server/common,
BSD-3-Clause), as compiled by protoc into the `service_pb2` module that
`tritonclient[grpc]` ships (a test dependency, never a runtime one). Its
`FileDescriptorProto` is cut down to the six RPCs kerascnn serves
(ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata,
ModelInfer) and the messages they use, renamed so it never clashes with
another copy of the protocol in the same process, and written out as a
serialized descriptor. Nothing is typed by hand: field numbers and names
are protoc's, so the wire format is Triton's.
"""

import os

from google.protobuf import descriptor_pb2

SERVICE = "GRPCInferenceService"
METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)
FILE_NAME = "kerascnn/serving/v2/inference.proto"
OUTPUT = os.path.join(os.path.dirname(__file__), "inference_pb.py")
LICENSE = """\
# Derived from Triton's grpc_service.proto (triton-inference-server/common):
#
# Copyright (c) 2020, NVIDIA CORPORATION. All rights reserved.
#
# Redistribution and use in source and binary forms, with or without
# modification, are permitted provided that the following conditions
# are met:
#  * Redistributions of source code must retain the above copyright
#    notice, this list of conditions and the following disclaimer.
#  * Redistributions in binary form must reproduce the above copyright
#    notice, this list of conditions and the following disclaimer in the
#    documentation and/or other materials provided with the distribution.
#  * Neither the name of NVIDIA CORPORATION nor the names of its
#    contributors may be used to endorse or promote products derived
#    from this software without specific prior written permission.
#
# THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS ``AS IS'' AND ANY
# EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
# IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR
# PURPOSE ARE DISCLAIMED.  IN NO EVENT SHALL THE COPYRIGHT OWNER OR
# CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
# EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO,
# PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR
# PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY
# OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
# (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
# OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def _referenced(message):
    """Top-level message names a message's fields refer to."""
    names = set()
    stack = [message]
    while stack:
        m = stack.pop()
        stack.extend(m.nested_type)
        for field in m.field:
            if field.type_name.startswith(".inference."):
                names.add(field.type_name.split(".")[2])
    return names


def pruned(source):
    """`source` (a FileDescriptorProto) with only `METHODS` and the
    messages they reach; no imports, no comments."""
    service = next(s for s in source.service if s.name == SERVICE)
    methods = [m for m in service.method if m.name in METHODS]
    if [m.name for m in methods] != list(METHODS):
        raise RuntimeError(f"{SERVICE} lacks some of {METHODS}.")
    messages = {m.name: m for m in source.message_type}
    wanted = set()
    todo = [
        t.split(".")[-1] for m in methods for t in (m.input_type, m.output_type)
    ]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(_referenced(messages[name]))
    result = descriptor_pb2.FileDescriptorProto(
        name=FILE_NAME, package=source.package, syntax=source.syntax
    )
    result.message_type.extend(
        m for m in source.message_type if m.name in wanted
    )
    kept = result.service.add(name=SERVICE)
    kept.method.extend(methods)
    return result


def render(descriptor):
    """The Python module for a pruned FileDescriptorProto."""
    blob = descriptor.SerializeToString()
    lines = [
        LICENSE,
        '"""The Open Inference Protocol\'s gRPC messages (generated: do not',
        "edit).",
        "",
        "Regenerate with `python -m kerascnn.serving.v2.generate_proto`. The",
        "messages live in a private descriptor pool, so tritonclient's own",
        "copy of the protocol can be imported in the same process.",
        '"""',
        "",
        "from google.protobuf import descriptor_pool, message_factory",
        "",
        "_POOL = descriptor_pool.DescriptorPool()",
        "DESCRIPTOR = _POOL.AddSerializedFile(",
    ]
    for i in range(0, len(blob), 16):
        lines.append(f"    {blob[i : i + 16]!r}")
    lines += [")", f'SERVICE_NAME = "{descriptor.package}.{SERVICE}"', ""]
    for message in descriptor.message_type:
        lines.append(
            f"{message.name} = message_factory.GetMessageClass("
            f'DESCRIPTOR.message_types_by_name["{message.name}"])'
        )
    lines.append("")
    return "\n".join(lines)


def main():
    from tritonclient.grpc import service_pb2

    source = descriptor_pb2.FileDescriptorProto.FromString(
        service_pb2.DESCRIPTOR.serialized_pb
    )
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(render(pruned(source)))
    print(f"Wrote {OUTPUT}")


if __name__ == "__main__":
    main()
