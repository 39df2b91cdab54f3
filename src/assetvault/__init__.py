"""Assetvault: a self-hosted DAM that speaks AEM Assets\x27 public APIs."""
