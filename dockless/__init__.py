"""The client side of dockless: the command line, the one HTTP client, the gateway, the local stack
and the deployer. Never deployed to Lambda."""
