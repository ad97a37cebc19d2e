"""`dockless gateway`: the registry API for any client, with layer bytes sent straight to the bucket."""
