"""What happens to stored images over time: tag history, GC, retention, quotas, usage and cost."""
