"""event client hash and flag (staff, rate-limited), learned questions and their witnesses, job marks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:55:38.742692
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_marks',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('read_id', sa.Integer(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('learned_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=False),
    sa.Column('query', sa.String(length=200), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_by', sa.String(length=254), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug', 'query', name='uq_learned_questions_slug_query')
    )
    with op.batch_alter_table('learned_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_learned_questions_slug'), ['slug'], unique=False)

    op.create_table('learned_witnesses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('visitor', sa.String(length=32), nullable=False),
    sa.Column('client', sa.String(length=32), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['learned_questions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('question_id', 'visitor', name='uq_learned_witnesses_question_visitor')
    )
    with op.batch_alter_table('learned_witnesses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_learned_witnesses_seen_at'), ['seen_at'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('flag', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_events_flag'), ['flag'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_flag'))
        batch_op.drop_column('flag')
        batch_op.drop_column('client')

    with op.batch_alter_table('learned_witnesses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_learned_witnesses_seen_at'))

    op.drop_table('learned_witnesses')
    with op.batch_alter_table('learned_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_learned_questions_slug'))

    op.drop_table('learned_questions')
    op.drop_table('job_marks')
