//! Which handler runs each operation declared in `potluck_app::api`: one line per operation.
//! Each handler receives the capability its declaration's scope gives (see `authz`) and the
//! input; `registry::Registry::check` fails when a declaration has no line here.

use super::{abra, catalogue, export, live, streams};
use crate::domain::{apps, audit_service, collectives, identity, notify, recipes};
use crate::operations::registry::Registry;
use potluck_app::api::*;
use potluck_app::model::RotatedSecret;

pub fn register() -> Registry {
    let mut r = Registry::default();

    // Identity
    r.op::<GetMe, _, _>(|st, cap, _| async move { identity::users::me(&st, &cap).await });
    r.op::<Whoami, _, _>(|st, cap, _| async move { identity::users::whoami(&st, &cap).await });
    r.op::<PublicProviders, _, _>(|st, _, _| async move { identity::providers::public_providers(&st).await });
    r.op::<ListProviders, _, _>(|st, cap, _| async move { identity::providers::list_providers(&st, &cap).await });
    r.op::<AddProvider, _, _>(|st, cap, i| async move { identity::providers::add_provider(&st, &cap, i).await });
    r.op::<SetProviderCollectives, _, _>(|st, cap, i| async move {
        identity::providers::set_provider_collectives(&st, &cap, i).await
    });
    r.op::<RemoveProvider, _, _>(|st, cap, i| async move { identity::providers::remove_provider(&st, &cap, i).await });
    r.op::<ListUsers, _, _>(|st, cap, _| async move { identity::users::list_users(&st, &cap).await });
    r.op::<SetFederationAdmin, _, _>(
        |st, cap, i| async move { identity::users::set_federation_admin(&st, &cap, i).await },
    );
    r.op::<LinkUsers, _, _>(|st, cap, i| async move { identity::users::link_users(&st, &cap, i).await });
    r.op::<MyIdentities, _, _>(|st, cap, _| async move { identity::users::my_identities(&st, &cap).await });
    r.op::<ListApiTokens, _, _>(|st, cap, _| async move { identity::tokens::list(&st, &cap).await });
    r.op::<CreateApiToken, _, _>(|st, cap, i| async move { identity::tokens::create(&st, &cap, i).await });
    r.op::<RevokeApiToken, _, _>(|st, cap, i| async move { identity::tokens::revoke(&st, &cap, i).await });

    // Collectives
    r.op::<ListCollectives, _, _>(|st, cap, _| async move { collectives::list_collectives(&st, &cap).await });
    r.op::<GetCollective, _, _>(|st, cap, _| async move { collectives::get_collective(&st, &cap).await });
    r.op::<CreateCollective, _, _>(|st, cap, i| async move { collectives::create_collective(&st, &cap, i).await });
    r.op::<UpdateCollective, _, _>(|st, cap, i| async move { collectives::update_collective(&st, &cap, i).await });
    r.op::<SetMemberRole, _, _>(|st, cap, i| async move { collectives::set_member_role(&st, &cap, i).await });
    r.op::<RemoveMember, _, _>(|st, cap, i| async move { collectives::remove_member(&st, &cap, i).await });
    r.op::<CreateInvitation, _, _>(|st, cap, i| async move { collectives::create_invitation(&st, &cap, i).await });
    r.op::<RevokeInvitation, _, _>(|st, cap, i| async move { collectives::revoke_invitation(&st, &cap, i).await });
    r.op::<AcceptInvitation, _, _>(|st, cap, i| async move { collectives::accept_invitation(&st, &cap, i).await });
    r.op::<AddGroupMapping, _, _>(|st, cap, i| async move { collectives::add_group_mapping(&st, &cap, i).await });
    r.op::<RemoveGroupMapping, _, _>(|st, cap, i| async move { collectives::remove_group_mapping(&st, &cap, i).await });

    // Audit
    r.op::<QueryAudit, _, _>(|st, cap, i| async move { audit_service::query_audit(&st, &cap, i).await });
    r.raw::<ExportAudit, _, _>(export::export);

    // Recipes and releases
    r.op::<ListRecipes, _, _>(|st, cap, _| async move { recipes::inspect::list(&st, &cap).await });
    r.op::<GetRecipe, _, _>(|st, cap, _| async move { recipes::inspect::detail(&st, &cap).await });
    r.op::<GetRecipeVersion, _, _>(|st, cap, i| async move { recipes::inspect::version_detail(&st, &cap, i).await });
    r.op::<RegisterRecipe, _, _>(|st, cap, i| async move {
        let row = recipes::store::register_recipe(&st, &cap, i).await?;
        recipes::inspect::summary(&st, row).await
    });
    r.op::<FetchRecipe, _, _>(|st, cap, i| async move { recipes::store::fetch_now(&st, &cap, i).await });
    r.op::<SetRecipeMaintainers, _, _>(|st, cap, i| async move { recipes::store::set_maintainers(&st, &cap, i).await });
    r.op::<ListReleases, _, _>(|st, cap, _| async move { recipes::review::list(&st, &cap).await });
    r.op::<OpenRelease, _, _>(|st, cap, i| async move { recipes::review::open(&st, &cap, i).await });
    r.op::<GetRelease, _, _>(|st, cap, _| async move { recipes::review::detail(&st, &cap).await });
    r.op::<ReviewRelease, _, _>(|st, cap, i| async move { recipes::review::review(&st, &cap, i).await });
    r.op::<UpdateRelease, _, _>(|st, cap, i| async move { recipes::review::update(&st, &cap, i).await });
    r.op::<WithdrawRelease, _, _>(|st, cap, _| async move { recipes::review::withdraw(&st, &cap).await });
    r.op::<PublishRelease, _, _>(|st, cap, _| async move { recipes::review::publish(&st, &cap).await });
    r.raw::<CatalogueJson, _, _>(catalogue::catalogue_json);
    r.raw::<ImportCatalogue, _, _>(catalogue::import);

    // Servers
    r.op::<ListServers, _, _>(|st, cap, _| async move { apps::servers::list(&st, &cap).await });
    r.op::<AddServer, _, _>(|st, cap, i| async move { apps::servers::add(&st, &cap, i).await });
    r.op::<RemoveServer, _, _>(|st, cap, _| async move { apps::servers::remove(&st, &cap).await });
    r.op::<TrustHostKey, _, _>(|st, cap, i| async move { apps::servers::trust_host_key(&st, &cap, i).await });
    r.op::<SetServerPolicy, _, _>(|st, cap, i| async move { apps::servers::set_policy(&st, &cap, i).await });

    // Apps, secrets and jobs
    r.op::<ListApps, _, _>(|st, cap, _| async move { apps::apps::list(&st, &cap).await });
    r.op::<CreateApp, _, _>(|st, cap, i| async move { apps::apps::create(&st, &cap, i).await });
    r.op::<AdoptApp, _, _>(|st, cap, _| async move { apps::drift::adopt(&st, &cap).await });
    r.op::<PreviewAbraTree, _, _>(|st, cap, i| async move {
        apps::tree::preview(&st, &cap, apps::tree::Source { upload: i.upload, archive: i.archive, servers: i.servers })
            .await
    });
    r.op::<ImportAbraTree, _, _>(|st, cap, i| async move {
        apps::tree::import(&st, &cap, apps::tree::Source { upload: i.upload, archive: i.archive, servers: i.servers })
            .await
    });
    r.raw::<UploadAbraTree, _, _>(abra::upload);
    r.raw::<ExportAbraTree, _, _>(abra::export);
    r.op::<GetApp, _, _>(|st, cap, _| async move { apps::detail(&st, &cap).await });
    r.op::<SetAppEnv, _, _>(|st, cap, i| async move { apps::apps::set_env(&st, &cap, i).await });
    r.op::<SetAppOverlays, _, _>(|st, cap, i| async move { apps::apps::set_overlays(&st, &cap, i).await });
    r.op::<ImportApp, _, _>(|st, cap, i| async move { apps::apps::import(&st, &cap, i).await });
    r.op::<ExportApp, _, _>(|_, cap, _| async move { apps::apps::export(&cap).await });
    r.op::<DeleteApp, _, _>(|st, cap, _| async move { apps::apps::delete(&st, &cap).await });
    r.op::<GetSync, _, _>(|st, cap, _| async move { apps::sync::view(&st, &cap).await });
    r.op::<SetSync, _, _>(|st, cap, i| async move { apps::sync::configure(&st, &cap, i).await });
    r.op::<RemoveSync, _, _>(|st, cap, _| async move { apps::sync::remove(&st, &cap).await });
    r.op::<SyncNow, _, _>(|st, cap, _| async move { apps::sync::sync_now(&st, &cap).await });
    r.op::<ApplyIncoming, _, _>(|st, cap, i| async move { apps::sync::apply(&st, &cap, i.id).await });
    r.op::<ApplyAllIncoming, _, _>(|st, cap, _| async move { apps::sync::apply_all(&st, &cap).await });
    r.op::<RejectIncoming, _, _>(|st, cap, i| async move { apps::sync::reject(&st, &cap, i.id).await });
    r.op::<PreviewJob, _, _>(|st, cap, i| async move { apps::preview(&st, &cap, i).await });
    r.op::<StartJob, _, _>(|st, cap, i| async move { apps::jobs::start(&st, &cap, i).await });
    r.op::<GetJob, _, _>(|st, cap, _| async move { apps::jobs::detail(&st, &cap).await });
    r.op::<GenerateSecrets, _, _>(|st, cap, i| async move { apps::secrets::generate(&st, &cap, i).await });
    r.op::<InsertSecret, _, _>(|st, cap, i| async move { apps::secrets::insert(&st, &cap, i).await });
    r.op::<RotateSecret, _, _>(|st, cap, i| async move {
        let (secret, job) = apps::secrets::rotate(&st, &cap, i).await?;
        Ok(RotatedSecret { secret, job })
    });
    r.raw::<JobEvents, _, _>(streams::job_events);
    r.raw::<AppLive, _, _>(live::app);
    r.raw::<AppsLive, _, _>(live::apps);
    r.raw::<ServersLive, _, _>(live::servers);
    r.raw::<ServiceLogs, _, _>(streams::logs);
    r.raw::<RunCommand, _, _>(streams::run);
    r.raw::<DownloadEnv, _, _>(streams::env_file);

    // Backups
    r.op::<ListBackups, _, _>(|st, cap, _| async move { apps::backups::list(&st, &cap).await });
    r.op::<AddBackupRepo, _, _>(|st, cap, i| async move { apps::backups::add_repo(&st, &cap, i).await });
    r.op::<RemoveBackupRepo, _, _>(|st, cap, i| async move { apps::backups::remove_repo(&st, &cap, i).await });
    r.op::<SetBackupSchedule, _, _>(|st, cap, i| async move { apps::schedules::set(&st, &cap, i).await });
    r.op::<RemoveBackupSchedule, _, _>(|st, cap, i| async move { apps::schedules::remove(&st, &cap, i).await });
    r.op::<SetDrillSchedule, _, _>(|st, cap, i| async move { apps::drill_schedules::set(&st, &cap, i).await });
    r.op::<RemoveDrillSchedule, _, _>(|st, cap, i| async move { apps::drill_schedules::remove(&st, &cap, i).await });
    r.raw::<DownloadBackup, _, _>(streams::backup_tar);

    // The fleet
    r.op::<GetFleet, _, _>(|st, cap, _| async move { apps::fleet::fleet(&st, &cap).await });
    r.op::<PreviewUpgradeBatch, _, _>(|st, cap, i| async move { apps::fleet::preview(&st, &cap, i).await });
    r.op::<StartUpgradeBatch, _, _>(|st, cap, i| async move { apps::fleet::start(&st, &cap, i).await });
    r.op::<GetUpgradeBatch, _, _>(|st, cap, i| async move { apps::fleet::get(&st, &cap, i).await });

    // Release CI
    r.op::<ListStagingServers, _, _>(|st, cap, _| async move { recipes::staging::list_servers(&st, &cap).await });
    r.op::<SetStagingServer, _, _>(|st, cap, i| async move { recipes::staging::set_server(&st, &cap, i).await });
    r.op::<GetRecipeTesting, _, _>(|st, cap, _| async move { recipes::staging::testing(&st, &cap).await });
    r.op::<SetRecipeTesting, _, _>(|st, cap, i| async move { recipes::staging::set_testing(&st, &cap, i).await });
    r.op::<StartStagingRun, _, _>(|st, cap, _| async move { recipes::staging::start(&st, &cap).await });
    r.op::<GetStagingRun, _, _>(|st, cap, i| async move { recipes::staging::get(&st, &cap, i).await });

    // Notifications
    r.op::<ListNotifications, _, _>(|st, cap, _| async move { notify::channels::list(&st, &cap).await });
    r.op::<AddNotificationChannel, _, _>(|st, cap, i| async move { notify::channels::add(&st, &cap, i).await });
    r.op::<RemoveNotificationChannel, _, _>(|st, cap, i| async move { notify::channels::remove(&st, &cap, i).await });
    r.op::<TestNotificationChannel, _, _>(|st, cap, i| async move { notify::channels::test(&st, &cap, i).await });
    r.op::<GetMailRelay, _, _>(|st, cap, _| async move { notify::relay::get(&st, &cap).await });
    r.op::<SetMailRelay, _, _>(|st, cap, i| async move { notify::relay::set(&st, &cap, i).await });
    r.op::<RemoveMailRelay, _, _>(|st, cap, _| async move { notify::relay::remove(&st, &cap).await });
    r.op::<GetMyNotifications, _, _>(|st, cap, _| async move { notify::relay::mine(&st, &cap).await });
    r.op::<SetMyNotifications, _, _>(|st, cap, i| async move { notify::relay::set_mine(&st, &cap, i).await });

    r
}
