"""What a test harness needs of a running server beyond its APIs: fault injection and the
request journal (docs/ci.md). Both are kept in small SQLite files of the data directory
that every API process of the server shares, apart from the content's database, so that
neither a snapshot nor a write of the tree ever waits on them."""
