"""The ``assetvault`` client commands: bulk work against a running server over its public
HTTP APIs only (direct binary upload, the classic API, the Author API and search)."""
