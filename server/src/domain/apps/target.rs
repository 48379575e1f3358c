//! Where a job takes an app, decided in one place: the preview shows exactly the version the job
//! will deploy, and refuses what the job would refuse, with the same words.

use super::apps::AppRow;
use super::plan;
use crate::domain::recipes::store::{self, RecipeRow};
use crate::domain::recipes::version::RecipeVersion;
use crate::error::Result;
use crate::state::AppState;
use potluck_app::error::ApiError;
use potluck_app::model::JobKind;

/// A job's destination, with the recipe loaded to decide it (the preview renders from it).
pub struct Resolved {
    /// The version or commit; `None` for an undeploy.
    pub version: Option<String>,
    pub recipe: RecipeRow,
}

/// Loads the app's recipe and releases once and decides where `kind` takes the app.
pub async fn resolve(st: &AppState, app: &AppRow, kind: JobKind, asked: Option<&str>) -> Result<Resolved> {
    let recipe = store::get(st, &app.recipe).await?;
    let versions = plan::versions(st, &recipe).await?;
    let facts = Facts {
        domain: &app.domain,
        recipe: &app.recipe,
        current: app.version.as_deref(),
        versions: &versions,
        default_branch: &recipe.default_branch,
    };
    let version = choose(kind, asked, &facts)?;
    Ok(Resolved { version, recipe })
}

/// What the choice depends on.
pub struct Facts<'a> {
    pub domain: &'a str,
    pub recipe: &'a str,
    /// The release running now (the last one, for an app running a chaos commit).
    pub current: Option<&'a str>,
    /// Newest first.
    pub versions: &'a [String],
    pub default_branch: &'a str,
}

/// The version `kind` goes to: what was asked for when that is allowed, else the default of
/// each kind (an upgrade to the newest, a rollback to the one just before, a deploy to the running
/// or newest version, a chaos deploy to the default branch).
pub fn choose(kind: JobKind, asked: Option<&str>, f: &Facts) -> std::result::Result<Option<String>, ApiError> {
    let asked = asked.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
    let known = |v: &str| f.versions.iter().any(|x| x == v);
    match kind {
        JobKind::Undeploy => Ok(None),
        // They leave the services as they are: the version is the one running (a drill deploys it
        // elsewhere).
        JobKind::Backup | JobKind::Restore | JobKind::Drill => Ok(f.current.map(str::to_string)),
        JobKind::Chaos => Ok(Some(asked.unwrap_or_else(|| f.default_branch.to_string()))),
        JobKind::Redeploy => match f.current.map(str::to_string).or(asked) {
            Some(v) => Ok(Some(v)),
            None => Err(ApiError::conflict(format!("{} has no version to redeploy: deploy it first", f.domain))),
        },
        JobKind::Deploy => {
            match asked.or_else(|| f.current.map(str::to_string)).or_else(|| f.versions.first().cloned()) {
                Some(v) if known(&v) => Ok(Some(v)),
                Some(v) => Err(ApiError::invalid("version", format!("recipe {} has no version {v:?}", f.recipe))),
                None => Err(ApiError::invalid(
                    "version",
                    format!("recipe {} has no published version; deploy a commit (chaos) instead", f.recipe),
                )),
            }
        }
        JobKind::Upgrade | JobKind::Rollback => {
            let upgrade = kind == JobKind::Upgrade;
            let current =
                f.current.ok_or_else(|| ApiError::conflict(format!("{} has no deployed version", f.domain)))?;
            let cur = RecipeVersion::parse(current);
            let candidates: Vec<&String> = f
                .versions
                .iter()
                .filter(|v| if upgrade { RecipeVersion::parse(v) > cur } else { RecipeVersion::parse(v) < cur })
                .collect();
            match asked {
                Some(t) if candidates.iter().any(|c| **c == t) => Ok(Some(t)),
                Some(t) => {
                    let dir = if upgrade { "a newer" } else { "an older" };
                    Err(ApiError::invalid(
                        "version",
                        format!("{t:?} is not {dir} version of {} than {current}", f.recipe),
                    ))
                }
                // Newest first: an upgrade goes to the newest, a rollback to the one just before.
                None => candidates.first().map(|v| Some(v.to_string())).ok_or_else(|| {
                    let end = if upgrade { "newest" } else { "oldest" };
                    ApiError::conflict(format!("{} is at the {end} version ({current})", f.domain))
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(current: Option<&'a str>, versions: &'a [String]) -> Facts<'a> {
        Facts { domain: "app.example.org", recipe: "demo", current, versions, default_branch: "main" }
    }

    fn versions() -> Vec<String> {
        ["1.0.0+2.0", "0.2.0+1.1", "0.1.0+1.0"].map(String::from).to_vec()
    }

    #[test]
    fn each_kind_has_its_default() {
        let v = versions();
        let at = facts(Some("0.2.0+1.1"), &v);
        assert_eq!(choose(JobKind::Upgrade, None, &at).unwrap().as_deref(), Some("1.0.0+2.0"));
        assert_eq!(choose(JobKind::Rollback, None, &at).unwrap().as_deref(), Some("0.1.0+1.0"));
        assert_eq!(choose(JobKind::Deploy, None, &at).unwrap().as_deref(), Some("0.2.0+1.1"));
        assert_eq!(choose(JobKind::Redeploy, Some(" "), &at).unwrap().as_deref(), Some("0.2.0+1.1"));
        assert_eq!(choose(JobKind::Chaos, None, &at).unwrap().as_deref(), Some("main"));
        assert_eq!(choose(JobKind::Undeploy, Some("1.0.0+2.0"), &at).unwrap(), None);
        let new = facts(None, &v);
        assert_eq!(choose(JobKind::Deploy, None, &new).unwrap().as_deref(), Some("1.0.0+2.0"), "a new app: the newest");
    }

    #[test]
    fn what_cannot_happen_is_refused_with_the_reason() {
        let v = versions();
        let at = facts(Some("0.2.0+1.1"), &v);
        let e = choose(JobKind::Rollback, Some("1.0.0+2.0"), &at).unwrap_err();
        assert!(e.to_string().contains("is not an older version of demo than 0.2.0+1.1"), "{e}");
        let e = choose(JobKind::Upgrade, Some("9.9.9+9"), &at).unwrap_err();
        assert!(e.to_string().contains("is not a newer version"), "{e}");
        let e = choose(JobKind::Deploy, Some("9.9.9+9"), &at).unwrap_err();
        assert!(e.to_string().contains("has no version \"9.9.9+9\""), "{e}");
        let newest = facts(Some("1.0.0+2.0"), &v);
        assert!(choose(JobKind::Upgrade, None, &newest).unwrap_err().to_string().contains("at the newest version"));
        let oldest = facts(Some("0.1.0+1.0"), &v);
        assert!(choose(JobKind::Rollback, None, &oldest).unwrap_err().to_string().contains("at the oldest version"));
        let new = facts(None, &v);
        assert!(choose(JobKind::Upgrade, None, &new).unwrap_err().to_string().contains("no deployed version"));
        assert!(choose(JobKind::Redeploy, None, &new).unwrap_err().to_string().contains("deploy it first"));
        let none = facts(None, &[]);
        assert!(choose(JobKind::Deploy, None, &none).unwrap_err().to_string().contains("chaos"));
    }
}
