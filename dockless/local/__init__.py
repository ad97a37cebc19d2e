"""The local stack: the moto server behind its doors, the local front door, TLS, the stack itself."""
