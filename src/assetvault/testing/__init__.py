"""Assetvault in a test suite: a handle on a test server (testing.server) and the pytest
plugin built on it (testing.pytest_plugin, an entry point of the package)."""
