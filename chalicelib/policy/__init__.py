"""Per-namespace and per-repository settings: verified mode, immutable tags, retention, caches."""
