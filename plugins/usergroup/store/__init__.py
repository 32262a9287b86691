"""The subscription store: tables in their own schema, Alembic migrations, the repository."""
