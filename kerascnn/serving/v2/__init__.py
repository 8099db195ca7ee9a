"""The Open Inference Protocol (KServe v2) beside TF Serving's API.

    tensors.py         datatypes, raw and BYTES encodings, the size check
    protocol.py        requests to `ModelServer` calls: signature choice,
                       metadata, health (no HTTP, no gRPC)
    rest.py            the `/v2/...` routes on the REST app (JSON and
                       Triton's binary data extension)
    grpc_service.py    `inference.GRPCInferenceService` on the gRPC server
    inference_pb.py    its messages, generated from Triton's proto by
                       `generate_proto.py` (do not edit)

`app.make_app` adds the routes and `grpc_service.add_services` the
service, so `kerascnn serve` speaks both protocols on the same ports.
"""
