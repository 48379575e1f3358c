//! What every request handler and service shares: configuration, the database, the key box,
//! an HTTP client for identity providers, caches and limiters. Passed around, never global.

use crate::adapters::crypto::SecretBox;
use crate::adapters::db::Db;
use crate::config::Config;
use crate::domain::identity::providers::MetadataCache;
use std::sync::Arc;
use std::time::Duration;

pub struct AppState {
    pub config: Config,
    /// This process's name in the leases it holds (jobs, server monitors): new per start.
    pub replica: String,
    /// `config.trusted_proxies`, parsed.
    pub proxies: Vec<ipnet::IpNet>,
    pub db: Db,
    pub secrets: SecretBox,
    /// For identity providers: no redirects followed (SSRF), short timeouts.
    pub http: reqwest::Client,
    pub oidc_metadata: MetadataCache,
    /// Engine clients by server uid (never reused, unlike row ids), with the digest of the
    /// settings each was built from.
    pub dockers: tokio::sync::Mutex<std::collections::HashMap<String, (String, bollard::Docker)>>,
    /// The servers' event-stream watchers.
    pub monitors: crate::domain::apps::servers::Monitors,
    /// The servers' live change numbers, for the live streams.
    pub live: crate::domain::apps::live::LiveHub,
    /// Deploy jobs: the worker's wake-up and the live event feed.
    pub jobs: crate::domain::apps::jobs::JobHub,
    /// Wakes the backup scheduler when a schedule is set.
    pub schedules: tokio::sync::Notify,
    /// Wakes the notification worker when deliveries are queued.
    pub notifications: tokio::sync::Notify,
    /// Wakes the batch upgrade runner when a batch starts.
    pub batches: tokio::sync::Notify,
    /// Wakes the staging runner when a run is queued or a staging server designated.
    pub staging: tokio::sync::Notify,
    /// Wakes the git sync worker (a webhook, a rejected change, new settings).
    pub sync: tokio::sync::Notify,
    /// Catalogue entries by recipe id, with the fingerprint of the refs they were built from.
    pub catalogue: std::sync::Mutex<
        std::collections::HashMap<
            potluck_app::model::RecipeId,
            (String, crate::domain::recipes::catalogue::RecipeMeta),
        >,
    >,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(config: Config, db: Db, secrets: SecretBox) -> anyhow::Result<SharedState> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("potluck/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(AppState {
            replica: format!(
                "{}:{}:{}",
                hostname_of(),
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            proxies: config.proxy_networks(),
            config,
            db,
            secrets,
            http,
            oidc_metadata: MetadataCache::default(),
            dockers: Default::default(),
            monitors: Default::default(),
            live: Default::default(),
            jobs: Default::default(),
            schedules: Default::default(),
            notifications: Default::default(),
            batches: Default::default(),
            staging: Default::default(),
            sync: Default::default(),
            catalogue: Default::default(),
        }))
    }

    /// How long a lease lasts.
    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.config.lease_secs.clamp(1.0, 3600.0))
    }

    /// The one redirect URI registered at every identity provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.config.public_base())
    }
}

fn hostname_of() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "potluck".into())
}
