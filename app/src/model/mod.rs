//! Wire types shared by the pages and the server: what crosses HTTP, and the pure role table.
//!
//! Nothing here holds a long-lived secret. The two values that are shown exactly once (a new API
//! token, an invitation link) travel in [`OneTimeSecret`], whose `Debug` is redacted.

mod apps;
mod audit;
mod backups;
mod fleet;
mod ids;
mod notify;
mod people;
mod recipes;
mod roles;
mod staging;
mod sync;

pub use apps::*;
pub use audit::*;
pub use backups::*;
pub use fleet::*;
pub use ids::*;
pub use notify::*;
pub use people::*;
pub use recipes::*;
pub use roles::*;
pub use staging::*;
pub use sync::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_back() {
        assert!(Role::Viewer < Role::Maintainer);
        assert!(Role::Maintainer < Role::Operator);
        assert!(Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn a_higher_role_grants_everything_a_lower_one_does() {
        for p in Permission::ALL {
            for w in Role::ALL.windows(2) {
                if w[0].grants(p) {
                    assert!(w[1].grants(p), "{} grants {p:?} but {} does not", w[0], w[1]);
                }
            }
        }
    }

    #[test]
    fn the_role_table() {
        use Permission::*;
        assert!(Role::Viewer.grants(ViewApps));
        assert!(!Role::Viewer.grants(OperateApps));
        assert!(Role::Maintainer.grants(ReviewReleases));
        assert!(!Role::Maintainer.grants(OperateApps));
        assert!(Role::Operator.grants(OperateApps));
        assert!(!Role::Operator.grants(ManageMembers));
        assert!(!Role::Operator.grants(ManageServers));
        assert!(Role::Admin.grants(ManageMembers));
        assert!(Role::Admin.grants(ViewAudit));
    }

    #[test]
    fn one_time_secrets_do_not_debug_print() {
        let s = OneTimeSecret("plk_supersecret".into());
        assert!(!format!("{s:?}").contains("supersecret"));
    }
}
