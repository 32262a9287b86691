"""What people and clients use: the REST API, the Subscriptions pages and the CLI, side by side."""
