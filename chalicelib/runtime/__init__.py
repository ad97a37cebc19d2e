"""What every request runs with: settings from the environment, logs and metrics, limits."""
