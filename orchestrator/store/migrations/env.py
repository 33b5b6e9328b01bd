"""Alembic's environment: migrations run on the connection ``orchestrator.store`` hands over.

There is no ``alembic.ini`` and no logging set-up here: the store runs ``upgrade`` itself at
start, inside its own transaction, and the application owns logging.
"""

from __future__ import annotations

from alembic import context

from orchestrator.store._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place: batch mode copies the table instead.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
