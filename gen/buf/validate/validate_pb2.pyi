"""Type stub of the runtime loader of buf/validate/validate.proto (see validate_pb2.py)."""

from google.protobuf.descriptor import FileDescriptor

DESCRIPTOR: FileDescriptor
