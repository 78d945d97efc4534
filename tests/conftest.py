"""Shared pytest plugins: the real servers the suites start on loopback."""

pytest_plugins = [
    "tests.harness.devnet",
    "tests.harness.envoy",
    "tests.harness.ferretdb",
    "tests.harness.services",
]
