//! Backups: each collective's restic repositories, what each app's labels cover, and the
//! snapshots Potluck took and checked.

use super::apps::AppStatus;
use super::ids::*;
use super::people::OneTimeSecret;
use serde::{Deserialize, Serialize};

/// A size as people read it: `512 B`, `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A restic repository of a collective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackupRepoView {
    pub id: BackupRepoId,
    pub name: String,
    /// `local`: a directory on the Potluck machine.
    pub kind: String,
    /// Where it is, as `restic -r` takes it.
    pub location: String,
    pub created_at: i64,
    /// Snapshots Potluck took into it, and their total size.
    pub snapshots: i64,
    pub bytes: i64,
}

/// A repository just added; `password` is set when Potluck made it, and is shown this once
/// (restic needs it to read the repository without Potluck).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AddedBackupRepo {
    pub repo: BackupRepoView,
    pub password: Option<OneTimeSecret>,
}

/// A snapshot Potluck took, after its checks passed (a backup whose checks fail keeps nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackupView {
    pub id: BackupId,
    pub app_domain: String,
    pub repo: String,
    /// restic's full snapshot id.
    pub snapshot: String,
    pub taken_at: i64,
    /// manual, schedule, before-upgrade, drill.
    pub reason: String,
    pub version: Option<String>,
    pub files: i64,
    pub bytes: i64,
    pub job_id: Option<JobId>,
}

impl BackupView {
    /// The eight characters restic prints.
    pub fn short_id(&self) -> &str {
        &self.snapshot[..self.snapshot.len().min(8)]
    }
}

/// How a volume of an app is backed up, as its recipe's labels say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum VolumeState {
    /// The whole volume.
    Whole,
    /// Only the paths the labels name (a dump, say).
    Paths,
    /// Left out on purpose (`backupbot.backup.volumes.<v>=false`).
    Excluded,
    /// No service that mounts it declares backups: its data is in no snapshot.
    Undeclared,
}

impl VolumeState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn label(self) -> &'static str {
        match self {
            VolumeState::Whole => "backed up",
            VolumeState::Paths => "backed up (named paths)",
            VolumeState::Excluded => "excluded",
            VolumeState::Undeclared => "not backed up",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VolumeCoverage {
    pub volume: String,
    pub state: VolumeState,
    /// The service whose labels decide it.
    pub service: Option<String>,
    pub paths: Vec<String>,
}

/// One app on the backups page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppBackups {
    pub domain: String,
    pub recipe: String,
    pub status: AppStatus,
    /// From the last deploy or backup; `None` before either.
    pub coverage: Option<Vec<VolumeCoverage>>,
    /// Newest first (at most 30).
    pub backups: Vec<BackupView>,
}

/// A collective's backups at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CollectiveBackups {
    pub slug: String,
    pub repos: Vec<BackupRepoView>,
    pub apps: Vec<AppBackups>,
    /// Whether the federation's configuration lets this collective keep repositories on the
    /// Potluck machine.
    pub local_allowed: bool,
    pub can_manage: bool,
    pub can_operate: bool,
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(6 << 20), "6.0 MiB");
        assert_eq!(human_bytes(3 << 40), "3.0 TiB");
    }
}
