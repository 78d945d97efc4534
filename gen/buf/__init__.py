"""Package of the buf.validate runtime loader."""
