"""The registry's services: blobs and uploads, manifests, tags, referrers, repositories."""
