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
    /// `local`: a directory on the Potluck machine; `sftp`: a directory over SFTP; `s3`: a
    /// bucket's prefix over S3.
    pub kind: String,
    /// Where it is, as `restic -r` takes it.
    pub location: String,
    /// SFTP: the server's pinned host key fingerprint.
    #[serde(default)]
    pub host_key: Option<String>,
    /// S3: the access key id requests are signed with (the secret key is never shown).
    #[serde(default)]
    pub s3_key_id: Option<String>,
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
    /// The last restore drill of this snapshot: when, whether it passed, what it said.
    pub drilled_at: Option<i64>,
    pub drill_ok: Option<bool>,
    pub drill_result: Option<String>,
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
    pub schedule: Option<BackupScheduleView>,
    /// When a restore drill of one of its snapshots last passed.
    pub last_verified: Option<i64>,
}

/// restic's keep rules for the snapshots a schedule takes; 0 leaves a rule out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KeepRules {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl KeepRules {
    /// As people say it: `7 daily, 4 weekly`.
    pub fn summary(&self) -> String {
        let rules = [
            (self.last, "last"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ];
        let parts: Vec<String> = rules.iter().filter(|(n, _)| *n > 0).map(|(n, r)| format!("{n} {r}")).collect();
        if parts.is_empty() {
            "all kept".into()
        } else {
            parts.join(", ")
        }
    }
}

/// An app's backup schedule: when it runs, where to, and what it keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackupScheduleView {
    pub repo: String,
    /// The cron pattern, in UTC.
    pub cron: String,
    /// The pattern in words ("At 03:30").
    pub described: String,
    /// Applied to the snapshots this schedule took, after each of its backups; snapshots taken
    /// by hand or before an upgrade are kept.
    pub keep: KeepRules,
    /// Each snapshot it takes is restore-drilled in a throw-away stack.
    pub drill: bool,
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    pub last_job_id: Option<JobId>,
    /// How its last run went (or why it did not run).
    pub last_result: Option<String>,
    pub set_by: String,
    pub updated_at: i64,
    /// Since when its backups are overdue: the two runs after the newest snapshot both came
    /// and went, each with a whole period to finish, and no snapshot was taken.
    pub overdue_since: Option<i64>,
}

/// A collective's scheduled restore drills: on its pattern, the newest snapshot of each app that
/// has not passed a drill yet is drilled, one app after another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DrillScheduleView {
    /// The cron pattern, in UTC.
    pub cron: String,
    /// The pattern in words ("At 04:00 on Sunday").
    pub described: String,
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    /// The round under way ("drilling 2 of 5: wiki.example.org") or how the last one ended.
    pub last_result: Option<String>,
    /// A round is under way.
    pub running: bool,
    pub set_by: String,
    pub updated_at: i64,
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
    /// May set the apps' backup schedules and the collective's drill schedule.
    pub can_schedule: bool,
    pub drill_schedule: Option<DrillScheduleView>,
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

    #[test]
    fn keep_rules_read_as_people_say_them() {
        use super::KeepRules;
        assert_eq!(KeepRules::default().summary(), "all kept");
        assert_eq!(KeepRules { daily: 7, monthly: 6, ..KeepRules::default() }.summary(), "7 daily, 6 monthly");
    }
}
