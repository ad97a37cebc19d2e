"""A registry in an AWS account: deploy, destroy, and the end-to-end check of a deployment."""
