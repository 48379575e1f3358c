-- What the pages show has a version (issue 10's page cache): every write to a table a page
-- reads moves `page_version.v`, in the writing transaction, so a page rendered at a version read
-- before it shows at least that version's data. The audit log moves its own head
-- (`audit_head.seq`), which the version query reads beside this row. Not watched: sessions,
-- sign-in state and rate limits, idempotency keys (no page shows them), and the audit tables.
-- Lease renewals (a holder saying every few seconds that it still runs a job, a server's
-- monitor, a staging run or a sync) change nothing a page shows: on those tables an update moves
-- the version only when it sets another column, so every column but the lease's is listed.
-- A table or column added later needs its triggers too: tests/integration/web.rs checks them all.
CREATE TABLE page_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v BIGINT NOT NULL
);
INSERT INTO page_version (id, v) VALUES (1, 0);

-- Deferred to the commit, and once per transaction: the row is locked only while the writing
-- transaction commits, after every other lock it takes, so no transaction waits on it while
-- holding rows another needs. A transaction writing under REPEATABLE READ or SERIALIZABLE would
-- meet this row's concurrent updates as a serialization failure at commit: Potluck writes under
-- READ COMMITTED only.
CREATE FUNCTION page_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('potluck.page_version_bumped', true) IS DISTINCT FROM 'yes' THEN
        UPDATE page_version SET v = v + 1 WHERE id = 1;
        PERFORM set_config('potluck.page_version_bumped', 'yes', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON abra_uploads DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON api_tokens DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON apps DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON backup_repos DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON backup_schedules DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON backups DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON bootstrap_tokens DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON collectives DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON drill_schedules DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR DELETE OR UPDATE OF collective_id, url, branch, credential_kind, credential_enc, webhook_enc, auto_apply, remote_head, audit_seq, wanted_at, started_at, synced_at, last_error, generation, created_at, updated_at ON git_sync DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON git_sync_base DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON git_sync_incoming DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON group_mappings DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON identities DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON identity_providers DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON invitations DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON job_events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR DELETE OR UPDATE OF id, app_id, collective_id, kind, state, requested_by, requested_by_name, target_version, options, attempts, result, created_at, started_at, finished_at ON jobs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON mail_settings DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON memberships DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON notification_channels DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON notification_deliveries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON provider_collectives DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON recipe_maintainers DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON recipes DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON release_proposals DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON release_reviews DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR DELETE OR UPDATE OF id, collective_id, name, kind, address, tls_ca, tls_cert, private_key_enc, engine_version, api_version, is_manager, nodes, last_checked_at, last_error, created_at, uid, host_key, policy, unreachable_since, unreachable_notified, monitor_connected, live_seq, live_summary, swarm_id ON servers DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON staging_run_lines DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR DELETE OR UPDATE OF id, recipe_id, proposal_id, commit_id, version, upgrade_from, state, server_id, stack_name, requested_by_name, failure, details, left_behind, created_at, started_at, finished_at ON staging_runs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON staging_servers DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON upgrade_batch_items DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON upgrade_batches DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
CREATE CONSTRAINT TRIGGER page_version AFTER INSERT OR UPDATE OR DELETE ON users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_version_bump();
