//! Recipe versions: tags shaped `<semver>+<upstream>` (`2.0.1+1.0.6-social-amd64`). Ordering is
//! by the semver part only (semver ignores build metadata, and the upstream part is free text);
//! the whole tag stays the identity. Real-world tags that do not fit (`v1.0.3`, `1.13.4_1`,
//! `latest`) are kept and shown as they are, ordered after parsed ones by name.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeVersion {
    /// The tag, exactly.
    pub tag: String,
    /// The recipe's own semver, when the tag has one (a leading `v` is tolerated).
    pub semver: Option<semver::Version>,
    /// What follows `+`: the upstream app's version, free text.
    pub upstream: Option<String>,
}

impl RecipeVersion {
    pub fn parse(tag: &str) -> RecipeVersion {
        let bare = tag.strip_prefix('v').unwrap_or(tag);
        let (core, upstream) = match bare.split_once('+') {
            Some((c, u)) => (c, Some(u.to_string())),
            None => (bare, None),
        };
        // Parse the core alone: the upstream part is not semver build metadata in practice.
        let semver = semver::Version::parse(core).ok();
        RecipeVersion { tag: tag.to_string(), semver, upstream }
    }

    /// Whether the tag follows the Co-op Cloud scheme exactly (`x.y.z+upstream`, no `v`).
    pub fn is_canonical(&self) -> bool {
        self.semver.is_some() && self.upstream.is_some() && !self.tag.starts_with('v')
    }

    /// `x.y.z+upstream` for a new semver and the given upstream.
    pub fn format(semver: &semver::Version, upstream: Option<&str>) -> String {
        match upstream {
            Some(u) if !u.is_empty() => format!("{semver}+{u}"),
            _ => semver.to_string(),
        }
    }
}

impl Ord for RecipeVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.semver, &other.semver) {
            (Some(a), Some(b)) => a.cmp_precedence(b).then_with(|| self.tag.cmp(&other.tag)),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => self.tag.cmp(&other.tag),
        }
    }
}

impl PartialOrd for RecipeVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_coop_cloud_tags() {
        let v = RecipeVersion::parse("2.0.1+1.0.6-social-amd64");
        assert_eq!(v.semver, Some(semver::Version::new(2, 0, 1)));
        assert_eq!(v.upstream.as_deref(), Some("1.0.6-social-amd64"));
        assert!(v.is_canonical());
        let v = RecipeVersion::parse("5.0.3+27.0.1-fpm");
        assert_eq!(v.upstream.as_deref(), Some("27.0.1-fpm"));
    }

    #[test]
    fn tolerates_real_world_tags() {
        let v = RecipeVersion::parse("v1.0.3");
        assert_eq!(v.semver, Some(semver::Version::new(1, 0, 3)));
        assert!(!v.is_canonical());
        assert_eq!(RecipeVersion::parse("1.13.4_1").semver, None);
        assert_eq!(RecipeVersion::parse("v2.4.8").semver, Some(semver::Version::new(2, 4, 8)));
        assert_eq!(RecipeVersion::parse("0.0.1").upstream, None);
    }

    #[test]
    fn orders_by_the_recipe_semver_only() {
        let mut v: Vec<RecipeVersion> = ["2.0.0+1.0.5", "1.13.4_1", "10.0.0+0.1", "2.0.1+0.9", "1.0.0+9.9", "v1.5.0"]
            .iter()
            .map(|t| RecipeVersion::parse(t))
            .collect();
        v.sort();
        let tags: Vec<&str> = v.iter().map(|v| v.tag.as_str()).collect();
        assert_eq!(tags, ["1.13.4_1", "1.0.0+9.9", "v1.5.0", "2.0.0+1.0.5", "2.0.1+0.9", "10.0.0+0.1"]);
    }
}
