"""The OCI protocol: names and references, media types, manifest parsing, the spec's errors."""
