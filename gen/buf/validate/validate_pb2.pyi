"""Type stub of the runtime loader of buf/validate/validate.proto (see validate_pb2.py).

The messages, enums and extensions are built at import time from protovalidate's descriptor, so their names
are typed as Any.
"""

from typing import Any

from google.protobuf.descriptor import FileDescriptor

DESCRIPTOR: FileDescriptor

def __getattr__(name: str) -> Any: ...
