"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
import hub.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_token',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('user', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user'), ['user'], unique=False)

    op.create_table('approval',
    sa.Column('approval_no', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('subject_entity', sa.String(length=16), nullable=True),
    sa.Column('subject_id', sa.String(length=26), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('applicant', sa.String(length=128), nullable=True),
    sa.Column('approver', sa.String(length=128), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('submitted_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('comment', sa.String(length=1024), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provenance', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_in', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('merged_into', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval'))
    )
    with op.batch_alter_table('approval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_approval_no'), ['approval_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_subject_id'), ['subject_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_updated_at'), ['updated_at'], unique=False)

    op.create_table('audit_log',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=True),
    sa.Column('before', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_user'), ['user'], unique=False)

    op.create_table('conflict',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('values', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('timestamps', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('golden', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('winner', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('run_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conflict'))
    )
    with op.batch_alter_table('conflict', schema=None) as batch_op:
        batch_op.create_index('ix_conflict_record', ['entity', 'record_id', 'field'], unique=False)
        batch_op.create_index('ix_conflict_status_entity', ['status', 'entity'], unique=False)

    op.create_table('customer',
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('customer_type', sa.String(length=16), nullable=True),
    sa.Column('tax_id', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('province', sa.String(length=128), nullable=True),
    sa.Column('city', sa.String(length=128), nullable=True),
    sa.Column('address', sa.String(length=512), nullable=True),
    sa.Column('postal_code', sa.String(length=32), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('credit_limit', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('payment_terms', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provenance', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_in', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('merged_into', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer'))
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_tax_id'), ['tax_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_updated_at'), ['updated_at'], unique=False)

    op.create_table('field_history',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('old', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('new', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('system', sa.String(length=64), nullable=True),
    sa.Column('user', sa.String(length=128), nullable=True),
    sa.Column('run_id', sa.String(length=26), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_field_history'))
    )
    with op.batch_alter_table('field_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_history_at'), ['at'], unique=False)
        batch_op.create_index('ix_field_history_record', ['entity', 'record_id', 'field'], unique=False)

    op.create_table('flow_run',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('flow', sa.String(length=64), nullable=False),
    sa.Column('trigger_key', sa.String(length=255), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('context', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_run')),
    sa.UniqueConstraint('flow', 'trigger_key', name=op.f('uq_flow_run_flow_trigger_key'))
    )
    with op.batch_alter_table('flow_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flow_run_record_id'), ['record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flow_run_status'), ['status'], unique=False)

    op.create_table('inbox',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('event_key', sa.String(length=255), nullable=True),
    sa.Column('headers', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('received_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox')),
    sa.UniqueConstraint('event_key', name=op.f('uq_inbox_event_key'))
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_status', ['status', 'received_at'], unique=False)

    op.create_table('match_candidate',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('record_a', sa.String(length=26), nullable=False),
    sa.Column('record_b', sa.String(length=26), nullable=False),
    sa.Column('score', sa.Double(), nullable=False),
    sa.Column('details', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_candidate'))
    )
    with op.batch_alter_table('match_candidate', schema=None) as batch_op:
        batch_op.create_index('ix_match_candidate_pair', ['entity', 'record_a', 'record_b'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_candidate_status'), ['status'], unique=False)

    op.create_table('match_key',
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('key_type', sa.String(length=32), nullable=False),
    sa.Column('key_value', sa.String(length=255), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.PrimaryKeyConstraint('entity', 'key_type', 'key_value', 'record_id', name=op.f('pk_match_key')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('match_key', schema=None) as batch_op:
        batch_op.create_index('ix_match_key_record', ['entity', 'record_id'], unique=False)

    op.create_table('match_reject',
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('record_a', sa.String(length=26), nullable=False),
    sa.Column('record_b', sa.String(length=26), nullable=False),
    sa.Column('fingerprint_a', sa.String(length=32), nullable=False),
    sa.Column('fingerprint_b', sa.String(length=32), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('entity', 'record_a', 'record_b', name=op.f('pk_match_reject'))
    )
    op.create_table('merge_log',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('winner_id', sa.String(length=26), nullable=False),
    sa.Column('loser_id', sa.String(length=26), nullable=False),
    sa.Column('snapshot', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_by', sa.String(length=128), nullable=True),
    sa.Column('merged_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unmerged_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merge_log'))
    )
    with op.batch_alter_table('merge_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merge_log_loser_id'), ['loser_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_merge_log_winner_id'), ['winner_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('fields', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('run_id', sa.String(length=26), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_until', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_idempotency_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_claim', ['status', 'connector', 'entity', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_outbox_record', ['entity', 'record_id'], unique=False)

    op.create_table('principal',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_principal'))
    )
    op.create_table('quarantine',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=True),
    sa.Column('raw_hash', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('raw', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reasons', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_source', ['connector', 'entity', 'source_id'], unique=False)
        batch_op.create_index('ix_quarantine_stream', ['connector', 'entity', 'status'], unique=False)

    op.create_table('role',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('entities', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('fields_denied', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('can', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_role'))
    )
    op.create_table('source_state',
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.Column('values', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('row_hash', sa.String(length=32), nullable=False),
    sa.Column('raw_hash', sa.String(length=32), nullable=True),
    sa.Column('source_ts', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('seen_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.String(length=26), nullable=True),
    sa.PrimaryKeyConstraint('entity', 'system', 'source_id', name=op.f('pk_source_state')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('source_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_state_record_id'), ['record_id'], unique=False)

    op.create_table('stream_state',
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('cursor', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('connector', 'entity', name=op.f('pk_stream_state'))
    )
    op.create_table('subscription',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=1024), nullable=False),
    sa.Column('entities', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('secret_ref', sa.String(length=255), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription')),
    sa.UniqueConstraint('name', name=op.f('uq_subscription_name'))
    )
    op.create_table('sync_run',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('stats', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('cursor', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('user', sa.String(length=128), nullable=True),
    sa.Column('started_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_run'))
    )
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_run_connector'), ['connector'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_run_started_at'), ['started_at'], unique=False)

    op.create_table('xref',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=False),
    sa.Column('record_id', sa.String(length=26), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xref')),
    sa.UniqueConstraint('entity', 'system', 'source_id', name=op.f('uq_xref_entity_system_source_id'))
    )
    with op.batch_alter_table('xref', schema=None) as batch_op:
        batch_op.create_index('ix_xref_entity_record', ['entity', 'record_id'], unique=False)

    op.create_table('contract',
    sa.Column('contract_no', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.String(length=26), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('total_value', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('signed_date', sa.Date(), nullable=True),
    sa.Column('approval_id', sa.String(length=26), nullable=True),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provenance', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_in', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('merged_into', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_contract_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract'))
    )
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_approval_id'), ['approval_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contract_contract_no'), ['contract_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_contract_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contract_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_contract_updated_at'), ['updated_at'], unique=False)

    op.create_table('flow_step',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('run_id', sa.String(length=26), nullable=False),
    sa.Column('step_no', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['flow_run.id'], name=op.f('fk_flow_step_run_id_flow_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_step')),
    sa.UniqueConstraint('run_id', 'step_no', name=op.f('uq_flow_step_run_id_step_no'))
    )
    with op.batch_alter_table('flow_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flow_step_run_id'), ['run_id'], unique=False)

    op.create_table('opportunity',
    sa.Column('opportunity_no', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.String(length=26), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('stage', sa.String(length=24), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('lost_reason', sa.String(length=512), nullable=True),
    sa.Column('approval_id', sa.String(length=26), nullable=True),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provenance', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_in', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('merged_into', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_opportunity_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity'))
    )
    with op.batch_alter_table('opportunity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_approval_id'), ['approval_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_opportunity_no'), ['opportunity_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_updated_at'), ['updated_at'], unique=False)

    op.create_table('principal_role',
    sa.Column('principal', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['principal'], ['principal.name'], name=op.f('fk_principal_role_principal_principal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('principal', 'role', name=op.f('pk_principal_role'))
    )
    op.create_table('order',
    sa.Column('order_no', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.String(length=26), nullable=True),
    sa.Column('contract_id', sa.String(length=26), nullable=True),
    sa.Column('order_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('total_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('shipping_status', sa.String(length=32), nullable=True),
    sa.Column('tracking_no', sa.String(length=64), nullable=True),
    sa.Column('opportunity_id', sa.String(length=26), nullable=True),
    sa.Column('satisfaction_score', sa.Integer(), nullable=True),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provenance', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_in', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('merged_into', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contract.id'], name=op.f('fk_order_contract_id_contract')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_order_customer_id_customer')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_order_opportunity_id_opportunity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order'))
    )
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_order_no'), ['order_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_updated_at'), ['updated_at'], unique=False)

    op.create_table('order_line',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=26), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('description', sa.String(length=512), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_order_line_order_id_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_line')),
    sa.UniqueConstraint('order_id', 'line_no', name=op.f('uq_order_line_order_id_line_no'))
    )
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_line_order_id'), ['order_id'], unique=False)

    op.create_table('payment',
    sa.Column('payment_no', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.String(length=26), nullable=True),
    sa.Column('order_id', sa.String(length=26), nullable=True),
    sa.Column('contract_id', sa.String(length=26), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('paid_at', hub.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('method', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('updated_at', hub.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provenance', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_in', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('merged_into', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contract.id'], name=op.f('fk_payment_contract_id_contract')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_payment_customer_id_customer')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_payment_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment'))
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_payment_no'), ['payment_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_updated_at'), ['updated_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_updated_at'))
        batch_op.drop_index(batch_op.f('ix_payment_payment_no'))
        batch_op.drop_index(batch_op.f('ix_payment_order_id'))
        batch_op.drop_index(batch_op.f('ix_payment_merged_into'))
        batch_op.drop_index(batch_op.f('ix_payment_customer_id'))
        batch_op.drop_index(batch_op.f('ix_payment_contract_id'))

    op.drop_table('payment')
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_line_order_id'))

    op.drop_table('order_line')
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_updated_at'))
        batch_op.drop_index(batch_op.f('ix_order_order_no'))
        batch_op.drop_index(batch_op.f('ix_order_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_order_merged_into'))
        batch_op.drop_index(batch_op.f('ix_order_customer_id'))
        batch_op.drop_index(batch_op.f('ix_order_contract_id'))

    op.drop_table('order')
    op.drop_table('principal_role')
    with op.batch_alter_table('opportunity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunity_updated_at'))
        batch_op.drop_index(batch_op.f('ix_opportunity_opportunity_no'))
        batch_op.drop_index(batch_op.f('ix_opportunity_merged_into'))
        batch_op.drop_index(batch_op.f('ix_opportunity_customer_id'))
        batch_op.drop_index(batch_op.f('ix_opportunity_approval_id'))

    op.drop_table('opportunity')
    with op.batch_alter_table('flow_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_step_run_id'))

    op.drop_table('flow_step')
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_updated_at'))
        batch_op.drop_index(batch_op.f('ix_contract_merged_into'))
        batch_op.drop_index(batch_op.f('ix_contract_customer_id'))
        batch_op.drop_index(batch_op.f('ix_contract_contract_no'))
        batch_op.drop_index(batch_op.f('ix_contract_approval_id'))

    op.drop_table('contract')
    with op.batch_alter_table('xref', schema=None) as batch_op:
        batch_op.drop_index('ix_xref_entity_record')

    op.drop_table('xref')
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_run_started_at'))
        batch_op.drop_index(batch_op.f('ix_sync_run_connector'))

    op.drop_table('sync_run')
    op.drop_table('subscription')
    op.drop_table('stream_state')
    with op.batch_alter_table('source_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_state_record_id'))

    op.drop_table('source_state')
    op.drop_table('role')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_stream')
        batch_op.drop_index('ix_quarantine_source')

    op.drop_table('quarantine')
    op.drop_table('principal')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_record')
        batch_op.drop_index('ix_outbox_claim')

    op.drop_table('outbox')
    with op.batch_alter_table('merge_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merge_log_winner_id'))
        batch_op.drop_index(batch_op.f('ix_merge_log_loser_id'))

    op.drop_table('merge_log')
    op.drop_table('match_reject')
    with op.batch_alter_table('match_key', schema=None) as batch_op:
        batch_op.drop_index('ix_match_key_record')

    op.drop_table('match_key')
    with op.batch_alter_table('match_candidate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_match_candidate_status'))
        batch_op.drop_index('ix_match_candidate_pair')

    op.drop_table('match_candidate')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_status')

    op.drop_table('inbox')
    with op.batch_alter_table('flow_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_run_status'))
        batch_op.drop_index(batch_op.f('ix_flow_run_record_id'))

    op.drop_table('flow_run')
    with op.batch_alter_table('field_history', schema=None) as batch_op:
        batch_op.drop_index('ix_field_history_record')
        batch_op.drop_index(batch_op.f('ix_field_history_at'))

    op.drop_table('field_history')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_updated_at'))
        batch_op.drop_index(batch_op.f('ix_customer_tax_id'))
        batch_op.drop_index(batch_op.f('ix_customer_phone'))
        batch_op.drop_index(batch_op.f('ix_customer_name'))
        batch_op.drop_index(batch_op.f('ix_customer_merged_into'))
        batch_op.drop_index(batch_op.f('ix_customer_email'))
        batch_op.drop_index(batch_op.f('ix_customer_code'))

    op.drop_table('customer')
    with op.batch_alter_table('conflict', schema=None) as batch_op:
        batch_op.drop_index('ix_conflict_status_entity')
        batch_op.drop_index('ix_conflict_record')

    op.drop_table('conflict')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_user'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    with op.batch_alter_table('approval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_updated_at'))
        batch_op.drop_index(batch_op.f('ix_approval_subject_id'))
        batch_op.drop_index(batch_op.f('ix_approval_merged_into'))
        batch_op.drop_index(batch_op.f('ix_approval_approval_no'))

    op.drop_table('approval')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user'))

    op.drop_table('api_token')
