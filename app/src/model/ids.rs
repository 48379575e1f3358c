//! Ids, one type per kind of row, so that an app's id cannot be passed where a server's is
//! expected. On the wire and in the database each is its integer (`serde` and `sqlx`
//! transparent); in a URL or a form field, its decimal digits.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type, utoipa::ToSchema), sqlx(transparent))]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    )*};
}

ids! {
    /// A collective (`collectives.id`).
    CollectiveId;
    /// A person (`users.id`).
    UserId;
    /// An identity provider (`identity_providers.id`).
    ProviderId;
    /// An API token (`api_tokens.id`).
    TokenId;
    /// An invitation to a collective (`invitations.id`).
    InvitationId;
    /// A group-to-role mapping of a provider (`group_mappings.id`).
    MappingId;
    /// A server, local or remote (`servers.id`).
    ServerId;
    /// An app (`apps.id`).
    AppId;
    /// A deploy job (`jobs.id`).
    JobId;
    /// A registered recipe (`recipes.id`).
    RecipeId;
    /// A release proposal (`release_proposals.id`).
    ProposalId;
    /// A review of a release proposal (`release_reviews.id`).
    ReviewId;
    /// A collective's backup repository (`backup_repos.id`).
    BackupRepoId;
    /// A snapshot Potluck took (`backups.id`).
    BackupId;
    /// A collective's notification channel (`notification_channels.id`).
    ChannelId;
    /// One notification on its way or sent (`notification_deliveries.id`).
    DeliveryId;
    /// A batch upgrade of several apps (`upgrade_batches.id`).
    BatchId;
    /// A staging run of a release proposal (`staging_runs.id`).
    StagingRunId;
    /// A change the collective's git remote has that Potluck has not taken (`git_sync_incoming.id`).
    IncomingId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_their_integers_on_the_wire_and_in_urls() {
        assert_eq!(serde_json::to_string(&AppId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<JobId>("7").unwrap(), JobId(7));
        assert_eq!("19".parse::<ServerId>().unwrap(), ServerId(19));
        assert!("x".parse::<ServerId>().is_err());
        assert_eq!(format!("/jobs/{}", JobId(5)), "/jobs/5");
    }
}
