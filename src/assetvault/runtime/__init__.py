"""How Assetvault runs: the supervisor of ``serve``, the roles its processes play."""
