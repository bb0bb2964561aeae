"""answer votes: "Was this answer helpful?" per section revision

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('answer_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=False),
    sa.Column('anchor', sa.String(length=200), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('query', sa.String(length=500), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('visitor', 'slug', 'anchor', 'revision', name='uq_answer_votes_visitor')
    )
    with op.batch_alter_table('answer_votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answer_votes_slug'), ['slug'], unique=False)
        batch_op.create_index(batch_op.f('ix_answer_votes_updated_at'), ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('answer_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_votes_updated_at'))
        batch_op.drop_index(batch_op.f('ix_answer_votes_slug'))
    op.drop_table('answer_votes')
