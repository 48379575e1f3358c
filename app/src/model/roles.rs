//! Roles and what they allow inside one collective: the pure table every check reads.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A member's role in one collective. The order is meaningful: a higher role grants everything a
/// lower one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Maintainer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Maintainer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Maintainer => "maintainer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// The one table that says what a role allows in its collective.
    pub fn grants(self, permission: Permission) -> bool {
        self >= Role::least_granting(permission)
    }

    /// The lowest role that allows `permission`.
    pub fn least_granting(permission: Permission) -> Role {
        use Permission::*;
        match permission {
            ViewCollective | ViewRecipes | ViewApps | ViewServers | CreateOwnApiToken => Role::Viewer,
            MaintainRecipes | ReviewReleases => Role::Maintainer,
            ManageApps | OperateApps | ManageSecrets | RunCommands => Role::Operator,
            ManageMembers | ManageGroupMappings | ManageServers | ViewAudit | EditCollective => Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a role may allow inside one collective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ViewCollective,
    ViewRecipes,
    ViewApps,
    ViewServers,
    CreateOwnApiToken,
    MaintainRecipes,
    ReviewReleases,
    ManageApps,
    OperateApps,
    ManageSecrets,
    RunCommands,
    ManageMembers,
    ManageGroupMappings,
    ManageServers,
    ViewAudit,
    EditCollective,
}

impl Permission {
    pub const ALL: [Permission; 16] = [
        Permission::ViewCollective,
        Permission::ViewRecipes,
        Permission::ViewApps,
        Permission::ViewServers,
        Permission::CreateOwnApiToken,
        Permission::MaintainRecipes,
        Permission::ReviewReleases,
        Permission::ManageApps,
        Permission::OperateApps,
        Permission::ManageSecrets,
        Permission::RunCommands,
        Permission::ManageMembers,
        Permission::ManageGroupMappings,
        Permission::ManageServers,
        Permission::ViewAudit,
        Permission::EditCollective,
    ];

    /// What the permission lets someone do, to finish "… can" in a sentence.
    pub fn what(self) -> &'static str {
        match self {
            Permission::ViewCollective => "see the collective",
            Permission::ViewRecipes => "see its recipes",
            Permission::ViewApps => "see its apps",
            Permission::ViewServers => "see its servers",
            Permission::CreateOwnApiToken => "create API tokens",
            Permission::MaintainRecipes => "maintain recipes",
            Permission::ReviewReleases => "review releases",
            Permission::ManageApps => "create, configure and delete apps",
            Permission::OperateApps => "deploy and operate apps",
            Permission::ManageSecrets => "manage app secrets",
            Permission::RunCommands => "run commands in apps",
            Permission::ManageMembers => "manage members and invitations",
            Permission::ManageGroupMappings => "map provider groups to roles",
            Permission::ManageServers => "manage servers",
            Permission::ViewAudit => "read the audit log",
            Permission::EditCollective => "edit the collective",
        }
    }
}
