"""Pull-through caches of other registries, and the mirror rules that copy from them."""
