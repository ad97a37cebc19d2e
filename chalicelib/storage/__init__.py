"""The S3 bucket: its key layout (paths.py) and the operations on it (objects.py)."""
