"""buf/validate/validate.proto for the google.protobuf runtime, loaded from protovalidate.

Written by tools/protogen.py; do not edit. protovalidate 2.x ships validate.proto's descriptor only inside
its own generated module (for the protobuf-py runtime), while the generated tronpay modules import
``buf.validate.validate_pb2``. This module adds that same serialized descriptor to the default pool and builds
the message classes from it, so nothing of validate.proto is copied into the repository.
"""

import importlib as _importlib

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor_pool as _descriptor_pool
from google.protobuf.internal import builder as _builder
from protovalidate._gen.buf.validate import validate_pb as _validate_pb

_serialized = _validate_pb.desc().proto.to_binary()
for _dep in _descriptor_pb2.FileDescriptorProto.FromString(_serialized).dependency:
    _importlib.import_module(_dep.removesuffix(".proto").replace("/", ".") + "_pb2")

DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(_serialized)
_globals = globals()
_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, _globals)
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, "buf.validate.validate_pb2", _globals)
