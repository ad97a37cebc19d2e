"""Image signatures in the containers/image "atomic" format, and the keys that make them trusted."""
