"""votes and events

Revision ID: 0001
Revises:
Create Date: 2026-11-24 15:09:38.624354
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit', sa.String(length=32), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=True),
    sa.Column('query', sa.Text(), nullable=True),
    sa.Column('results', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('search_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_events_kind_created', ['kind', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_search_id'), ['search_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_visit'), ['visit'], unique=False)

    op.create_table('votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('revision', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('visitor', 'slug', name='uq_votes_visitor_slug')
    )
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_votes_slug'), ['slug'], unique=False)
        batch_op.create_index(batch_op.f('ix_votes_updated_at'), ['updated_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_votes_updated_at'))
        batch_op.drop_index(batch_op.f('ix_votes_slug'))

    op.drop_table('votes')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_visit'))
        batch_op.drop_index(batch_op.f('ix_events_search_id'))
        batch_op.drop_index('ix_events_kind_created')
        batch_op.drop_index(batch_op.f('ix_events_created_at'))

    op.drop_table('events')
