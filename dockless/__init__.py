"""The client side of dockless: CLI, local stack and (later) gateway. Never deployed to Lambda."""
