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

"""The Open Inference Protocol's gRPC messages (generated: do not
edit).

Regenerate with `python -m kerascnn.serving.v2.generate_proto`. The
messages live in a private descriptor pool, so tritonclient's own
copy of the protocol can be imported in the same process.
"""

from google.protobuf import descriptor_pool, message_factory

_POOL = descriptor_pool.DescriptorPool()
DESCRIPTOR = _POOL.AddSerializedFile(
    b"\n#kerascnn/servi"
    b"ng/v2/inference."
    b"proto\x12\tinference"
    b'"\x13\n\x11ServerLiveRe'
    b'quest""\n\x12ServerL'
    b"iveResponse\x12\x0c\n\x04l"
    b'ive\x18\x01 \x01(\x08"\x14\n\x12Ser'
    b'verReadyRequest"'
    b"$\n\x13ServerReadyRe"
    b"sponse\x12\r\n\x05ready\x18"
    b'\x01 \x01(\x08"2\n\x11ModelRe'
    b"adyRequest\x12\x0c\n\x04na"
    b"me\x18\x01 \x01(\t\x12\x0f\n\x07vers"
    b'ion\x18\x02 \x01(\t"#\n\x12Mod'
    b"elReadyResponse\x12"
    b'\r\n\x05ready\x18\x01 \x01(\x08"\x17'
    b"\n\x15ServerMetadata"
    b'Request"K\n\x16Serve'
    b"rMetadataRespons"
    b"e\x12\x0c\n\x04name\x18\x01 \x01(\t\x12"
    b"\x0f\n\x07version\x18\x02 \x01(\t"
    b"\x12\x12\n\nextensions\x18\x03"
    b' \x03(\t"5\n\x14ModelMet'
    b"adataRequest\x12\x0c\n\x04"
    b"name\x18\x01 \x01(\t\x12\x0f\n\x07ve"
    b'rsion\x18\x02 \x01(\t"\x8d\x02\n\x15'
    b"ModelMetadataRes"
    b"ponse\x12\x0c\n\x04name\x18\x01 "
    b"\x01(\t\x12\x10\n\x08versions\x18"
    b"\x02 \x03(\t\x12\x10\n\x08platfor"
    b"m\x18\x03 \x01(\t\x12?\n\x06input"
    b"s\x18\x04 \x03(\x0b2/.infere"
    b"nce.ModelMetadat"
    b"aResponse.Tensor"
    b"Metadata\x12@\n\x07outp"
    b"uts\x18\x05 \x03(\x0b2/.infe"
    b"rence.ModelMetad"
    b"ataResponse.Tens"
    b"orMetadata\x1a?\n\x0eTe"
    b"nsorMetadata\x12\x0c\n\x04"
    b"name\x18\x01 \x01(\t\x12\x10\n\x08da"
    b"tatype\x18\x02 \x01(\t\x12\r\n\x05"
    b'shape\x18\x03 \x03(\x03"\x99\x01\n\x0e'
    b"InferParameter\x12\x14"
    b"\n\nbool_param\x18\x01 \x01"
    b"(\x08H\x00\x12\x15\n\x0bint64_pa"
    b"ram\x18\x02 \x01(\x03H\x00\x12\x16\n\x0cs"
    b"tring_param\x18\x03 \x01("
    b"\tH\x00\x12\x16\n\x0cdouble_pa"
    b"ram\x18\x04 \x01(\x01H\x00\x12\x16\n\x0cu"
    b"int64_param\x18\x05 \x01("
    b"\x04H\x00B\x12\n\x10parameter"
    b'_choice"\xd0\x01\n\x13Infe'
    b"rTensorContents\x12"
    b"\x15\n\rbool_contents"
    b"\x18\x01 \x03(\x08\x12\x14\n\x0cint_co"
    b"ntents\x18\x02 \x03(\x05\x12\x16\n\x0e"
    b"int64_contents\x18\x03"
    b" \x03(\x03\x12\x15\n\ruint_con"
    b"tents\x18\x04 \x03(\r\x12\x17\n\x0fu"
    b"int64_contents\x18\x05"
    b" \x03(\x04\x12\x15\n\rfp32_con"
    b"tents\x18\x06 \x03(\x02\x12\x15\n\rf"
    b"p64_contents\x18\x07 \x03"
    b"(\x01\x12\x16\n\x0ebytes_cont"
    b'ents\x18\x08 \x03(\x0c"\xee\x06\n\x11M'
    b"odelInferRequest"
    b"\x12\x12\n\nmodel_name\x18\x01"
    b" \x01(\t\x12\x15\n\rmodel_ve"
    b"rsion\x18\x02 \x01(\t\x12\n\n\x02i"
    b"d\x18\x03 \x01(\t\x12@\n\nparam"
    b"eters\x18\x04 \x03(\x0b2,.in"
    b"ference.ModelInf"
    b"erRequest.Parame"
    b"tersEntry\x12=\n\x06inp"
    b"uts\x18\x05 \x03(\x0b2-.infe"
    b"rence.ModelInfer"
    b"Request.InferInp"
    b"utTensor\x12H\n\x07outp"
    b"uts\x18\x06 \x03(\x0b27.infe"
    b"rence.ModelInfer"
    b"Request.InferReq"
    b"uestedOutputTens"
    b"or\x12\x1a\n\x12raw_input_"
    b"contents\x18\x07 \x03(\x0c\x1a\x94"
    b"\x02\n\x10InferInputTen"
    b"sor\x12\x0c\n\x04name\x18\x01 \x01("
    b"\t\x12\x10\n\x08datatype\x18\x02 "
    b"\x01(\t\x12\r\n\x05shape\x18\x03 \x03"
    b"(\x03\x12Q\n\nparameters"
    b"\x18\x04 \x03(\x0b2=.inferen"
    b"ce.ModelInferReq"
    b"uest.InferInputT"
    b"ensor.Parameters"
    b"Entry\x120\n\x08content"
    b"s\x18\x05 \x01(\x0b2\x1e.infere"
    b"nce.InferTensorC"
    b"ontents\x1aL\n\x0fParam"
    b"etersEntry\x12\x0b\n\x03ke"
    b"y\x18\x01 \x01(\t\x12(\n\x05value"
    b"\x18\x02 \x01(\x0b2\x19.inferen"
    b"ce.InferParamete"
    b"r:\x028\x01\x1a\xd5\x01\n\x1aInferR"
    b"equestedOutputTe"
    b"nsor\x12\x0c\n\x04name\x18\x01 \x01"
    b"(\t\x12[\n\nparameters"
    b"\x18\x02 \x03(\x0b2G.inferen"
    b"ce.ModelInferReq"
    b"uest.InferReques"
    b"tedOutputTensor."
    b"ParametersEntry\x1a"
    b"L\n\x0fParametersEnt"
    b"ry\x12\x0b\n\x03key\x18\x01 \x01(\t\x12"
    b"(\n\x05value\x18\x02 \x01(\x0b2\x19"
    b".inference.Infer"
    b"Parameter:\x028\x01\x1aL\n"
    b"\x0fParametersEntry"
    b"\x12\x0b\n\x03key\x18\x01 \x01(\t\x12(\n"
    b"\x05value\x18\x02 \x01(\x0b2\x19.i"
    b"nference.InferPa"
    b'rameter:\x028\x01"\xd5\x04\n\x12'
    b"ModelInferRespon"
    b"se\x12\x12\n\nmodel_name"
    b"\x18\x01 \x01(\t\x12\x15\n\rmodel_"
    b"version\x18\x02 \x01(\t\x12\n\n"
    b"\x02id\x18\x03 \x01(\t\x12A\n\npar"
    b"ameters\x18\x04 \x03(\x0b2-."
    b"inference.ModelI"
    b"nferResponse.Par"
    b"ametersEntry\x12@\n\x07"
    b"outputs\x18\x05 \x03(\x0b2/."
    b"inference.ModelI"
    b"nferResponse.Inf"
    b"erOutputTensor\x12\x1b"
    b"\n\x13raw_output_con"
    b"tents\x18\x06 \x03(\x0c\x1a\x97\x02\n\x11"
    b"InferOutputTenso"
    b"r\x12\x0c\n\x04name\x18\x01 \x01(\t\x12"
    b"\x10\n\x08datatype\x18\x02 \x01("
    b"\t\x12\r\n\x05shape\x18\x03 \x03(\x03"
    b"\x12S\n\nparameters\x18\x04"
    b" \x03(\x0b2?.inference"
    b".ModelInferRespo"
    b"nse.InferOutputT"
    b"ensor.Parameters"
    b"Entry\x120\n\x08content"
    b"s\x18\x05 \x01(\x0b2\x1e.infere"
    b"nce.InferTensorC"
    b"ontents\x1aL\n\x0fParam"
    b"etersEntry\x12\x0b\n\x03ke"
    b"y\x18\x01 \x01(\t\x12(\n\x05value"
    b"\x18\x02 \x01(\x0b2\x19.inferen"
    b"ce.InferParamete"
    b"r:\x028\x01\x1aL\n\x0fParamet"
    b"ersEntry\x12\x0b\n\x03key\x18"
    b"\x01 \x01(\t\x12(\n\x05value\x18\x02"
    b" \x01(\x0b2\x19.inference"
    b".InferParameter:"
    b"\x028\x012\xfc\x03\n\x14GRPCInfe"
    b"renceService\x12K\n\n"
    b"ServerLive\x12\x1c.inf"
    b"erence.ServerLiv"
    b"eRequest\x1a\x1d.infer"
    b"ence.ServerLiveR"
    b'esponse"\x00\x12N\n\x0bSer'
    b"verReady\x12\x1d.infer"
    b"ence.ServerReady"
    b"Request\x1a\x1e.infere"
    b"nce.ServerReadyR"
    b'esponse"\x00\x12K\n\nMod'
    b"elReady\x12\x1c.infere"
    b"nce.ModelReadyRe"
    b"quest\x1a\x1d.inferenc"
    b"e.ModelReadyResp"
    b'onse"\x00\x12W\n\x0eServer'
    b"Metadata\x12 .infer"
    b"ence.ServerMetad"
    b"ataRequest\x1a!.inf"
    b"erence.ServerMet"
    b'adataResponse"\x00\x12'
    b"T\n\rModelMetadata"
    b"\x12\x1f.inference.Mod"
    b"elMetadataReques"
    b"t\x1a .inference.Mo"
    b"delMetadataRespo"
    b'nse"\x00\x12K\n\nModelIn'
    b"fer\x12\x1c.inference."
    b"ModelInferReques"
    b"t\x1a\x1d.inference.Mo"
    b"delInferResponse"
    b'"\x00b\x06proto3'
)
SERVICE_NAME = "inference.GRPCInferenceService"

ServerLiveRequest = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ServerLiveRequest"]
)
ServerLiveResponse = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ServerLiveResponse"]
)
ServerReadyRequest = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ServerReadyRequest"]
)
ServerReadyResponse = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ServerReadyResponse"]
)
ModelReadyRequest = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ModelReadyRequest"]
)
ModelReadyResponse = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ModelReadyResponse"]
)
ServerMetadataRequest = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ServerMetadataRequest"]
)
ServerMetadataResponse = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ServerMetadataResponse"]
)
ModelMetadataRequest = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ModelMetadataRequest"]
)
ModelMetadataResponse = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ModelMetadataResponse"]
)
InferParameter = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["InferParameter"]
)
InferTensorContents = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["InferTensorContents"]
)
ModelInferRequest = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ModelInferRequest"]
)
ModelInferResponse = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["ModelInferResponse"]
)
