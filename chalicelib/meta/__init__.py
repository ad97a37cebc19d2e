"""Registry metadata in DynamoDB (pynamodb models)."""
