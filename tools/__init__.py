"""Command-line tools of the cluster (run as scripts or `python -m tools.<name>`; tests import them)."""
