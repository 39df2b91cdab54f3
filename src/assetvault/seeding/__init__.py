"""Seeding a DAM from a local folder (``assetvault seed``, ``serve --seed``)."""
