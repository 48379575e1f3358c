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

CREATE TRIGGER page_version_abra_uploads_i AFTER INSERT ON abra_uploads BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_abra_uploads_u AFTER UPDATE ON abra_uploads BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_abra_uploads_d AFTER DELETE ON abra_uploads BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_api_tokens_i AFTER INSERT ON api_tokens BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_api_tokens_u AFTER UPDATE ON api_tokens BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_api_tokens_d AFTER DELETE ON api_tokens BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_apps_i AFTER INSERT ON apps BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_apps_u AFTER UPDATE ON apps BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_apps_d AFTER DELETE ON apps BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backup_repos_i AFTER INSERT ON backup_repos BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backup_repos_u AFTER UPDATE ON backup_repos BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backup_repos_d AFTER DELETE ON backup_repos BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backup_schedules_i AFTER INSERT ON backup_schedules BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backup_schedules_u AFTER UPDATE ON backup_schedules BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backup_schedules_d AFTER DELETE ON backup_schedules BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backups_i AFTER INSERT ON backups BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backups_u AFTER UPDATE ON backups BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_backups_d AFTER DELETE ON backups BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_bootstrap_tokens_i AFTER INSERT ON bootstrap_tokens BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_bootstrap_tokens_u AFTER UPDATE ON bootstrap_tokens BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_bootstrap_tokens_d AFTER DELETE ON bootstrap_tokens BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_collectives_i AFTER INSERT ON collectives BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_collectives_u AFTER UPDATE ON collectives BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_collectives_d AFTER DELETE ON collectives BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_drill_schedules_i AFTER INSERT ON drill_schedules BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_drill_schedules_u AFTER UPDATE ON drill_schedules BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_drill_schedules_d AFTER DELETE ON drill_schedules BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_i AFTER INSERT ON git_sync BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_u AFTER UPDATE OF collective_id, url, branch, credential_kind, credential_enc, webhook_enc, auto_apply, remote_head, audit_seq, wanted_at, started_at, synced_at, last_error, generation, created_at, updated_at ON git_sync BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_d AFTER DELETE ON git_sync BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_base_i AFTER INSERT ON git_sync_base BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_base_u AFTER UPDATE ON git_sync_base BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_base_d AFTER DELETE ON git_sync_base BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_incoming_i AFTER INSERT ON git_sync_incoming BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_incoming_u AFTER UPDATE ON git_sync_incoming BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_git_sync_incoming_d AFTER DELETE ON git_sync_incoming BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_group_mappings_i AFTER INSERT ON group_mappings BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_group_mappings_u AFTER UPDATE ON group_mappings BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_group_mappings_d AFTER DELETE ON group_mappings BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_identities_i AFTER INSERT ON identities BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_identities_u AFTER UPDATE ON identities BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_identities_d AFTER DELETE ON identities BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_identity_providers_i AFTER INSERT ON identity_providers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_identity_providers_u AFTER UPDATE ON identity_providers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_identity_providers_d AFTER DELETE ON identity_providers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_invitations_i AFTER INSERT ON invitations BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_invitations_u AFTER UPDATE ON invitations BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_invitations_d AFTER DELETE ON invitations BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_job_events_i AFTER INSERT ON job_events BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_job_events_u AFTER UPDATE ON job_events BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_job_events_d AFTER DELETE ON job_events BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_jobs_i AFTER INSERT ON jobs BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_jobs_u AFTER UPDATE OF id, app_id, collective_id, kind, state, requested_by, requested_by_name, target_version, options, attempts, result, created_at, started_at, finished_at ON jobs BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_jobs_d AFTER DELETE ON jobs BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_mail_settings_i AFTER INSERT ON mail_settings BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_mail_settings_u AFTER UPDATE ON mail_settings BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_mail_settings_d AFTER DELETE ON mail_settings BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_memberships_i AFTER INSERT ON memberships BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_memberships_u AFTER UPDATE ON memberships BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_memberships_d AFTER DELETE ON memberships BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_notification_channels_i AFTER INSERT ON notification_channels BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_notification_channels_u AFTER UPDATE ON notification_channels BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_notification_channels_d AFTER DELETE ON notification_channels BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_notification_deliveries_i AFTER INSERT ON notification_deliveries BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_notification_deliveries_u AFTER UPDATE ON notification_deliveries BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_notification_deliveries_d AFTER DELETE ON notification_deliveries BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_provider_collectives_i AFTER INSERT ON provider_collectives BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_provider_collectives_u AFTER UPDATE ON provider_collectives BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_provider_collectives_d AFTER DELETE ON provider_collectives BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_recipe_maintainers_i AFTER INSERT ON recipe_maintainers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_recipe_maintainers_u AFTER UPDATE ON recipe_maintainers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_recipe_maintainers_d AFTER DELETE ON recipe_maintainers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_recipes_i AFTER INSERT ON recipes BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_recipes_u AFTER UPDATE ON recipes BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_recipes_d AFTER DELETE ON recipes BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_release_proposals_i AFTER INSERT ON release_proposals BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_release_proposals_u AFTER UPDATE ON release_proposals BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_release_proposals_d AFTER DELETE ON release_proposals BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_release_reviews_i AFTER INSERT ON release_reviews BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_release_reviews_u AFTER UPDATE ON release_reviews BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_release_reviews_d AFTER DELETE ON release_reviews BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_servers_i AFTER INSERT ON servers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_servers_u AFTER UPDATE OF id, collective_id, name, kind, address, tls_ca, tls_cert, private_key_enc, engine_version, api_version, is_manager, nodes, last_checked_at, last_error, created_at, uid, host_key, policy, unreachable_since, unreachable_notified, monitor_connected, live_seq, live_summary, swarm_id ON servers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_servers_d AFTER DELETE ON servers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_run_lines_i AFTER INSERT ON staging_run_lines BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_run_lines_u AFTER UPDATE ON staging_run_lines BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_run_lines_d AFTER DELETE ON staging_run_lines BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_runs_i AFTER INSERT ON staging_runs BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_runs_u AFTER UPDATE OF id, recipe_id, proposal_id, commit_id, version, upgrade_from, state, server_id, stack_name, requested_by_name, failure, details, left_behind, created_at, started_at, finished_at ON staging_runs BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_runs_d AFTER DELETE ON staging_runs BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_servers_i AFTER INSERT ON staging_servers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_servers_u AFTER UPDATE ON staging_servers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_staging_servers_d AFTER DELETE ON staging_servers BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_upgrade_batch_items_i AFTER INSERT ON upgrade_batch_items BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_upgrade_batch_items_u AFTER UPDATE ON upgrade_batch_items BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_upgrade_batch_items_d AFTER DELETE ON upgrade_batch_items BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_upgrade_batches_i AFTER INSERT ON upgrade_batches BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_upgrade_batches_u AFTER UPDATE ON upgrade_batches BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_upgrade_batches_d AFTER DELETE ON upgrade_batches BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_users_i AFTER INSERT ON users BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_users_u AFTER UPDATE ON users BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER page_version_users_d AFTER DELETE ON users BEGIN UPDATE page_version SET v = v + 1 WHERE id = 1; END;
