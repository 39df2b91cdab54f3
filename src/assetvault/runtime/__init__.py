"""How Assetvault's processes run: the wake-up channel (wake.py), and the roles and the
supervisor that start them (docs/runtime.md)."""
