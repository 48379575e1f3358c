//! Every action the audit log knows. Operations declare the ones they may write (see
//! [`crate::api`]), the server records them by variant, and the log stores and filters them by
//! their dotted name (`app.deploy.request`): renaming one would orphan its past events.

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
pub enum AuditAction {
    // Sign-in and the first admin.
    #[strum(serialize = "bootstrap.link_create")]
    BootstrapLinkCreate,
    #[strum(serialize = "bootstrap.claim")]
    BootstrapClaim,
    #[strum(serialize = "auth.login")]
    AuthLogin,
    #[strum(serialize = "auth.link")]
    AuthLink,

    // The federation.
    #[strum(serialize = "identity_provider.add")]
    IdentityProviderAdd,
    #[strum(serialize = "identity_provider.set_collectives")]
    IdentityProviderSetCollectives,
    #[strum(serialize = "identity_provider.remove")]
    IdentityProviderRemove,
    #[strum(serialize = "user.federation_admin.grant")]
    FederationAdminGrant,
    #[strum(serialize = "user.federation_admin.revoke")]
    FederationAdminRevoke,
    #[strum(serialize = "user.link")]
    UserLink,
    #[strum(serialize = "api_token.create")]
    ApiTokenCreate,
    #[strum(serialize = "api_token.revoke")]
    ApiTokenRevoke,

    // Collectives and who is in them.
    #[strum(serialize = "collective.create")]
    CollectiveCreate,
    #[strum(serialize = "collective.update")]
    CollectiveUpdate,
    #[strum(serialize = "member.set_role")]
    MemberSetRole,
    #[strum(serialize = "member.remove")]
    MemberRemove,
    #[strum(serialize = "invitation.create")]
    InvitationCreate,
    #[strum(serialize = "invitation.revoke")]
    InvitationRevoke,
    #[strum(serialize = "invitation.accept")]
    InvitationAccept,
    #[strum(serialize = "group_mapping.add")]
    GroupMappingAdd,
    #[strum(serialize = "group_mapping.remove")]
    GroupMappingRemove,

    // Recipes and their releases.
    #[strum(serialize = "recipe.register")]
    RecipeRegister,
    #[strum(serialize = "recipe.fetch")]
    RecipeFetch,
    #[strum(serialize = "recipe.set_maintainers")]
    RecipeSetMaintainers,
    #[strum(serialize = "release.open")]
    ReleaseOpen,
    #[strum(serialize = "release.review")]
    ReleaseReview,
    #[strum(serialize = "release.update")]
    ReleaseUpdate,
    #[strum(serialize = "release.withdraw")]
    ReleaseWithdraw,
    #[strum(serialize = "release.publish.intent")]
    ReleasePublishIntent,
    #[strum(serialize = "release.publish")]
    ReleasePublish,

    // Servers.
    #[strum(serialize = "server.add")]
    ServerAdd,
    #[strum(serialize = "server.remove")]
    ServerRemove,
    #[strum(serialize = "server.host_key.trust")]
    ServerHostKeyTrust,
    #[strum(serialize = "server.policy.set")]
    ServerPolicySet,

    // Apps.
    #[strum(serialize = "app.create")]
    AppCreate,
    #[strum(serialize = "app.env.update")]
    AppEnvUpdate,
    #[strum(serialize = "app.import")]
    AppImport,
    #[strum(serialize = "app.adopt")]
    AppAdopt,
    #[strum(serialize = "app.delete")]
    AppDelete,
    #[strum(serialize = "sync.configure")]
    SyncConfigure,
    #[strum(serialize = "sync.remove")]
    SyncRemove,
    #[strum(serialize = "sync.push")]
    SyncPush,
    #[strum(serialize = "sync.incoming")]
    SyncIncoming,
    #[strum(serialize = "sync.incoming.apply")]
    SyncApply,
    #[strum(serialize = "sync.incoming.reject")]
    SyncReject,
    #[strum(serialize = "app.run")]
    AppRun,
    #[strum(serialize = "app.secret.generate.intent")]
    SecretGenerateIntent,
    #[strum(serialize = "app.secret.generate")]
    SecretGenerate,
    #[strum(serialize = "app.secret.insert.intent")]
    SecretInsertIntent,
    #[strum(serialize = "app.secret.insert")]
    SecretInsert,
    #[strum(serialize = "app.secret.rotate.intent")]
    SecretRotateIntent,
    #[strum(serialize = "app.secret.rotate")]
    SecretRotate,

    // Deploy jobs: the request (by a person), then the outcome (by the job runner).
    #[strum(serialize = "app.deploy.request")]
    DeployRequest,
    #[strum(serialize = "app.upgrade.request")]
    UpgradeRequest,
    #[strum(serialize = "app.rollback.request")]
    RollbackRequest,
    #[strum(serialize = "app.redeploy.request")]
    RedeployRequest,
    #[strum(serialize = "app.undeploy.request")]
    UndeployRequest,
    #[strum(serialize = "app.chaos.request")]
    ChaosRequest,
    #[strum(serialize = "app.deploy")]
    Deploy,
    #[strum(serialize = "app.upgrade")]
    Upgrade,
    #[strum(serialize = "app.rollback")]
    Rollback,
    #[strum(serialize = "app.redeploy")]
    Redeploy,
    #[strum(serialize = "app.undeploy")]
    Undeploy,
    #[strum(serialize = "app.chaos")]
    Chaos,

    // Backups: the repositories, then jobs (request by a person, outcome by the job runner).
    #[strum(serialize = "backup_repo.add")]
    BackupRepoAdd,
    #[strum(serialize = "backup_repo.remove")]
    BackupRepoRemove,
    #[strum(serialize = "app.backup_schedule.set")]
    BackupScheduleSet,
    #[strum(serialize = "app.backup_schedule.remove")]
    BackupScheduleRemove,
    #[strum(serialize = "collective.drill_schedule.set")]
    DrillScheduleSet,
    #[strum(serialize = "collective.drill_schedule.remove")]
    DrillScheduleRemove,
    #[strum(serialize = "app.backup.request")]
    BackupRequest,
    #[strum(serialize = "app.restore.request")]
    RestoreRequest,
    #[strum(serialize = "app.drill.request")]
    DrillRequest,
    #[strum(serialize = "app.backup")]
    Backup,
    #[strum(serialize = "app.restore")]
    Restore,
    #[strum(serialize = "app.drill")]
    Drill,
    #[strum(serialize = "app.backup.download")]
    BackupDownload,

    // Notifications: a collective's channels, the federation's mail relay, a person's choices.
    #[strum(serialize = "notification_channel.add")]
    ChannelAdd,
    #[strum(serialize = "notification_channel.remove")]
    ChannelRemove,
    #[strum(serialize = "notification_channel.test")]
    ChannelTest,
    #[strum(serialize = "mail_relay.set")]
    MailRelaySet,
    #[strum(serialize = "mail_relay.remove")]
    MailRelayRemove,
    #[strum(serialize = "user.notifications.set")]
    MyNotificationsSet,

    // The fleet.
    #[strum(serialize = "fleet.batch_upgrade.start")]
    BatchUpgradeStart,

    // Release CI.
    #[strum(serialize = "staging_server.set")]
    StagingServerSet,
    #[strum(serialize = "release.staging_run.start")]
    StagingRunStart,
    #[strum(serialize = "recipe.testing.set")]
    RecipeTestingSet,
}

impl AuditAction {
    /// The name the log stores.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;
    use strum::VariantArray;

    #[test]
    fn names_are_unique_and_read_back() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::VARIANTS {
            assert!(seen.insert(a.as_str()), "{a:?} repeats {}", a.as_str());
            assert_eq!(a.as_str().parse::<AuditAction>().unwrap(), *a);
        }
    }
}
