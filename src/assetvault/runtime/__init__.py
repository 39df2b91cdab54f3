"""How Assetvault's processes run: the supervisor of ``serve``, the roles its processes
play (roles.py) and the wake-up channel that rouses them (wake.py); docs/runtime.md."""
