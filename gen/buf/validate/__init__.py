"""buf.validate loaded from the installed protovalidate."""
