"""Everything that runs in Lambda: the registry API, its storage and its metadata."""
