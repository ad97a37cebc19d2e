"""DynamoDB: the models, their keys, and the audit trail."""
