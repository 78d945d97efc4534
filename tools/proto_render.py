"""Render a FileDescriptorProto back to .proto source text.

Used to give buf and protoc a source form of ``buf/validate/validate.proto``, which neither buf nor the
protovalidate Python distribution ships as a file: the distribution only embeds the serialized
FileDescriptorProto in its generated module. The output is checked by compiling it again and comparing the
result with the original descriptor (see ``tools/protogen.py``), so any construct this renderer does not
handle faithfully fails the build instead of producing a subtly different schema.

Custom options (for example ``(buf.validate.predefined)``) are rendered from the parsed option messages; the
extensions they use must be registered in ``pool`` (the default pool when it holds them).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message,
    text_encoding,
    text_format,
    unknown_fields,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass

FDP = descriptor_pb2.FieldDescriptorProto

_SCALARS = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}
_LABELS = {FDP.LABEL_OPTIONAL: "optional", FDP.LABEL_REQUIRED: "required", FDP.LABEL_REPEATED: "repeated"}
_MAX_FIELD_NUMBER = 536870911
_MAX_ENUM_NUMBER = 2147483647


def _quote(value: str) -> str:
    # CEscape takes str as well (and keeps UTF-8 text readable only for str); its stub says bytes.
    return '"' + text_encoding.CEscape(value, as_utf8=True) + '"'  # type: ignore[arg-type]


class Renderer:
    """Renders one file; options are reparsed in ``pool`` so registered extensions become visible."""

    def __init__(self, fdp: descriptor_pb2.FileDescriptorProto, pool: descriptor_pool.DescriptorPool):
        self.fdp = fdp
        self.pool = pool
        self.proto3 = fdp.syntax == "proto3"
        self.lines: list[str] = []

    # -- options -------------------------------------------------------------------------------------
    def _reparse(self, opts: message.Message) -> message.Message:
        cls = GetMessageClass(self.pool.FindMessageTypeByName(opts.DESCRIPTOR.full_name))
        out = cls()
        out.ParseFromString(opts.SerializeToString())
        if len(unknown_fields.UnknownFieldSet(out)):
            raise ValueError(f"unknown option fields in {opts.DESCRIPTOR.full_name}")
        return out

    def _option_items(self, opts: message.Message, skip: tuple[str, ...] = ()) -> list[str]:
        items = []
        for fd, value in self._reparse(opts).ListFields():
            if fd.name in skip and not fd.is_extension:
                continue
            name = f"({fd.full_name})" if fd.is_extension else fd.name
            values = value if fd.label == fd.LABEL_REPEATED else [value]  # type: ignore[attr-defined]
            for v in values:
                items.append(f"{name} = {self._value(fd, v)}")
        return items

    def _value(self, fd: FieldDescriptor, v: Any) -> str:
        """One option value; `v` is what ListFields gives for `fd` (a message, enum number, bytes, str...)."""
        if fd.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            return "{ " + text_format.MessageToString(v, as_one_line=True, as_utf8=True) + " }"
        if fd.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            if fd.enum_type is None:
                raise TypeError(f"{fd.full_name} is an enum field without an enum type")
            return fd.enum_type.values_by_number[v].name
        if fd.cpp_type == FieldDescriptor.CPPTYPE_STRING:
            if fd.type == FieldDescriptor.TYPE_BYTES:
                return '"' + text_encoding.CEscape(v, as_utf8=False) + '"'
            return _quote(v)
        if fd.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            return "true" if v else "false"
        return repr(v)

    def _emit_options(self, indent: str, opts: message.Message, skip: tuple[str, ...] = ()) -> None:
        for item in self._option_items(opts, skip):
            self.lines.append(f"{indent}option {item};")

    # -- pieces --------------------------------------------------------------------------------------
    def _type_name(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM, FDP.TYPE_GROUP):
            return field.type_name  # fully qualified with a leading dot, valid in .proto source
        return _SCALARS[field.type]

    def _field(
        self,
        indent: str,
        field: descriptor_pb2.FieldDescriptorProto,
        maps: dict[str, descriptor_pb2.DescriptorProto],
        in_oneof: bool,
    ) -> None:
        if field.type == FDP.TYPE_GROUP:
            raise ValueError(f"groups are not supported: {field.name}")
        entry = maps.get(field.type_name) if field.type == FDP.TYPE_MESSAGE else None
        if entry is not None:
            key, val = entry.field[0], entry.field[1]
            decl = f"map<{self._type_name(key)}, {self._type_name(val)}> {field.name} = {field.number}"
        else:
            label = ""
            if not in_oneof:
                if field.label == FDP.LABEL_REPEATED:
                    label = "repeated "
                elif not self.proto3 or field.proto3_optional:
                    label = _LABELS[field.label] + " "
            decl = f"{label}{self._type_name(field)} {field.name} = {field.number}"
        opts: list[str] = []
        if field.HasField("default_value"):
            opts.append(f"default = {self._default(field)}")
        if field.HasField("json_name") and field.json_name != _default_json_name(field.name):
            opts.append(f"json_name = {_quote(field.json_name)}")
        if field.HasField("options"):
            opts.extend(self._option_items(field.options))
        if opts:
            decl += " [" + ", ".join(opts) + "]"
        self.lines.append(f"{indent}{decl};")

    def _default(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        if field.type == FDP.TYPE_STRING:
            return _quote(field.default_value)
        if field.type == FDP.TYPE_BYTES:
            return '"' + field.default_value + '"'  # already C-escaped in the descriptor
        return field.default_value

    def _ranges(self, indent: str, keyword: str, ranges: list[tuple[int, int]], exclusive_end: bool) -> None:
        parts = []
        top = _MAX_FIELD_NUMBER if exclusive_end else _MAX_ENUM_NUMBER
        for start, end in ranges:
            last = end - 1 if exclusive_end else end
            if last == top:
                parts.append(f"{start} to max")
            elif last == start:
                parts.append(str(start))
            else:
                parts.append(f"{start} to {last}")
        if parts:
            self.lines.append(f"{indent}{keyword} {', '.join(parts)};")

    def _enum(self, indent: str, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.lines.append(f"{indent}enum {enum.name} {{")
        inner = indent + "  "
        if enum.HasField("options"):
            self._emit_options(inner, enum.options)
        for value in enum.value:
            decl = f"{inner}{value.name} = {value.number}"
            if value.HasField("options"):
                decl += " [" + ", ".join(self._option_items(value.options)) + "]"
            self.lines.append(decl + ";")
        self._ranges(inner, "reserved", [(r.start, r.end) for r in enum.reserved_range], exclusive_end=False)
        if enum.reserved_name:
            self.lines.append(f"{inner}reserved {', '.join(_quote(n) for n in enum.reserved_name)};")
        self.lines.append(f"{indent}}}")

    def _extensions(self, indent: str, fields: list[descriptor_pb2.FieldDescriptorProto]) -> None:
        by_extendee: dict[str, list[descriptor_pb2.FieldDescriptorProto]] = {}
        for ext in fields:
            by_extendee.setdefault(ext.extendee, []).append(ext)
        for extendee, exts in by_extendee.items():
            self.lines.append(f"{indent}extend {extendee} {{")
            for ext in exts:
                self._field(indent + "  ", ext, {}, in_oneof=False)
            self.lines.append(f"{indent}}}")

    def _message(self, indent: str, msg: descriptor_pb2.DescriptorProto, scope: str) -> None:
        full = f"{scope}.{msg.name}"
        self.lines.append(f"{indent}message {msg.name} {{")
        inner = indent + "  "
        if msg.HasField("options"):
            self._emit_options(inner, msg.options)
        maps = {f"{full}.{n.name}": n for n in msg.nested_type if n.options.map_entry}
        real_oneofs = {
            i
            for i, _ in enumerate(msg.oneof_decl)
            if not any(
                f.proto3_optional for f in msg.field if f.HasField("oneof_index") and f.oneof_index == i
            )
        }
        done_oneofs: set[int] = set()
        for field in msg.field:
            if field.HasField("oneof_index") and field.oneof_index in real_oneofs:
                idx = field.oneof_index
                if idx in done_oneofs:
                    continue
                done_oneofs.add(idx)
                decl = msg.oneof_decl[idx]
                self.lines.append(f"{inner}oneof {decl.name} {{")
                if decl.HasField("options"):
                    self._emit_options(inner + "  ", decl.options)
                for member in msg.field:
                    if member.HasField("oneof_index") and member.oneof_index == idx:
                        self._field(inner + "  ", member, maps, in_oneof=True)
                self.lines.append(f"{inner}}}")
            else:
                self._field(inner, field, maps, in_oneof=False)
        for nested in msg.nested_type:
            if not nested.options.map_entry:
                self._message(inner, nested, full)
        for enum in msg.enum_type:
            self._enum(inner, enum)
        self._extensions(inner, list(msg.extension))
        self._ranges(inner, "extensions", [(r.start, r.end) for r in msg.extension_range], exclusive_end=True)
        self._ranges(inner, "reserved", [(r.start, r.end) for r in msg.reserved_range], exclusive_end=True)
        if msg.reserved_name:
            self.lines.append(f"{inner}reserved {', '.join(_quote(n) for n in msg.reserved_name)};")
        self.lines.append(f"{indent}}}")

    # -- file ----------------------------------------------------------------------------------------
    def render(self) -> str:
        fdp = self.fdp
        if fdp.service:
            raise ValueError("services are not supported")
        if fdp.syntax == "editions":
            raise ValueError("editions are not supported")
        self.lines = [
            f"// Rendered by tools/proto_render.py from the descriptor of {fdp.name}; do not edit.",
            f'syntax = "{fdp.syntax or "proto2"}";',
            "",
        ]
        if fdp.package:
            self.lines += [f"package {fdp.package};", ""]
        public = set(fdp.public_dependency)
        weak = set(fdp.weak_dependency)
        for i, dep in enumerate(fdp.dependency):
            kind = "public " if i in public else "weak " if i in weak else ""
            self.lines.append(f"import {kind}{_quote(dep)};")
        self.lines.append("")
        if fdp.HasField("options"):
            self._emit_options("", fdp.options)
            self.lines.append("")
        self._extensions("", list(fdp.extension))
        scope = f".{fdp.package}" if fdp.package else ""
        for msg in fdp.message_type:
            self._message("", msg, scope)
        for enum in fdp.enum_type:
            self._enum("", enum)
        return "\n".join(self.lines) + "\n"


def _default_json_name(name: str) -> str:
    out = []
    upper = False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def render(fdp: descriptor_pb2.FileDescriptorProto, pool: descriptor_pool.DescriptorPool) -> str:
    """Return .proto source for ``fdp``; custom options resolve against ``pool``."""
    return Renderer(fdp, pool).render()
