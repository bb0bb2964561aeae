"""events and tickets carry their channel (site or widget) and the widget's host page

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('events', 'tickets'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('channel', sa.String(length=8), server_default='site', nullable=False))
            batch_op.add_column(sa.Column('page', sa.String(length=500), nullable=True))


def downgrade() -> None:
    for table in ('tickets', 'events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('page')
            batch_op.drop_column('channel')
