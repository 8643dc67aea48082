"""Alembic environment: always run on a connection handed in by storage.Database,
inside its transaction (and, on PostgreSQL, under its advisory lock)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTERs SQLite cannot do
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
