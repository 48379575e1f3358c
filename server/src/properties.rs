//! Property tests of everything that reads untrusted input: env files, compose YAML and its
//! interpolation and schema, whole recipes through loading, conversion, lint and the deploy
//! guardrails, version tags, sign-in return paths and recipe sources. Whatever the input, none
//! may panic (a panic in a request takes that request down; an abort takes every collective's
//! down), and the answers keep their promises (a return path stays on site, an env file's
//! values stay within their caps, versions order totally). `make fuzz` drives the same entry
//! points with a coverage-guided fuzzer for longer.

use crate::adapters::engine::envfile::{EnvFile, MAX_EXPANDED_BYTES, MAX_VALUE_BYTES};
use crate::adapters::engine::load::RecipeFiles;
use crate::adapters::engine::{guard, interpolate, schema, yaml};
use crate::domain::recipes::version::RecipeVersion;
use indexmap::IndexMap;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Text that looks like what the parsers expect: their syntax characters, names, quotes and
/// line breaks, mixed with anything.
fn soup(max: usize) -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just(":-".to_string()),
        Just("\n".to_string()),
        Just("=".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("#".to_string()),
        Just(" ".to_string()),
        Just("\\".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: ".to_string()),
        Just("- ".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just(": ".to_string()),
        Just("  ".to_string()),
        "[A-Z_]{1,6}".prop_map(|s| s),
        "[a-z0-9._/-]{1,8}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(pieces, 0..max).prop_map(|v| v.concat())
}

/// A compose file made of plausible parts, some of them wrong.
fn compose() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("potluck-test/busybox:1".to_string()),
        Just("${IMAGE:-busybox}".to_string()),
        Just("\"3.8\"".to_string()),
        Just("/:/host".to_string()),
        Just("data:/data".to_string()),
        Just("true".to_string()),
        Just("0440".to_string()),
        Just("[NET_ADMIN]".to_string()),
        Just("{}".to_string()),
        "[a-z0-9${}:_./-]{0,12}".prop_map(|s| s),
    ];
    let key = prop_oneof![
        Just("image"),
        Just("command"),
        Just("volumes"),
        Just("environment"),
        Just("secrets"),
        Just("configs"),
        Just("networks"),
        Just("deploy"),
        Just("labels"),
        Just("cap_add"),
        Just("privileged"),
        Just("ports"),
        Just("healthcheck"),
        Just("x-other"),
    ];
    let entry = (key, value, any::<bool>()).prop_map(|(k, v, list)| {
        if list {
            format!("    {k}:\n      - {v}\n")
        } else {
            format!("    {k}: {v}\n")
        }
    });
    (proptest::collection::vec(entry, 0..8), prop_oneof![Just("3.8"), Just("3.0"), Just("2.4"), Just("x")]).prop_map(
        |(entries, version)| {
            format!(
                "version: \"{version}\"\nservices:\n  app:\n{}volumes:\n  data:\nsecrets:\n  s:\n    external: true\n",
                entries.concat()
            )
        },
    )
}

fn files(compose: &str, sample: &str) -> RecipeFiles {
    let mut f = BTreeMap::new();
    f.insert("compose.yml".to_string(), compose.as_bytes().to_vec());
    f.insert(".env.sample".to_string(), sample.as_bytes().to_vec());
    RecipeFiles { root: "/recipe".into(), files: f }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn env_files_parse_within_their_caps(text in soup(200)) {
        if let Ok(file) = EnvFile::parse(&text) {
            let values = file.values(&|_| None);
            let total: usize = values.values().map(String::len).sum();
            prop_assert!(values.values().all(|v| v.len() <= MAX_VALUE_BYTES));
            prop_assert!(total <= MAX_EXPANDED_BYTES * 2);
            // What is written back reads back the same.
            let again = EnvFile::parse(&file.to_string()).expect("a written file parses");
            prop_assert_eq!(again.values(&|_| None), values);
        }
    }

    #[test]
    fn setting_a_value_reads_it_back(
        key in "[A-Z][A-Z0-9_]{0,10}",
        // (godotenv cannot read back a value that needs quotes and ends with a backslash: see
        // envfile::write_value)
        value in "\\PC{0,40}".prop_filter("representable", |v| !v.ends_with('\\') || v.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:,@+=%~^\\".contains(c)))
    ) {
        let mut file = EnvFile::parse("A=1\n# comment\nB='two'\n").expect("parses");
        file.set(&key, &value);
        let again = EnvFile::parse(&file.to_string()).expect("parses");
        prop_assert_eq!(again.values(&|_| None).get(&key).cloned(), Some(value));
    }

    #[test]
    fn yaml_never_panics(text in soup(300)) {
        let _ = yaml::parse(&text);
    }

    #[test]
    fn interpolation_and_schema_never_panic(text in soup(200), env in proptest::collection::btree_map("[A-Z]{1,3}", "\\PC{0,20}", 0..6)) {
        if let Ok(yaml::Node::Map(mut root)) = yaml::parse(&format!("services:\n  app:\n    image: x\n    command: \"{}\"\n", text.replace('"', ""))) {
            let lookup = |k: &str| env.get(k).cloned();
            if interpolate::interpolate(&mut root, &lookup).is_ok() {
                let _ = schema::validate("3.8", &root);
            }
        }
    }

    #[test]
    fn recipes_load_convert_lint_and_guard_without_panicking(compose in compose(), sample in soup(80)) {
        let f = files(&compose, &sample);
        let env: IndexMap<String, String> =
            [("STACK_NAME".to_string(), "app_example_org".to_string())].into_iter().collect();
        if let Ok(plan) = crate::adapters::engine::render(&f, &env, "app_example_org", None) {
            // A plan names only its own stack's objects unless the recipe says otherwise, and
            // the guardrails name every host path they refuse.
            for finding in guard::check(&plan, &guard::Policy::default()) {
                prop_assert!(finding.to_string().contains(&finding.service));
            }
        }
        let _ = crate::domain::recipes::lint::lint_files(&f, "x");
    }

    #[test]
    fn version_tags_order_totally(a in "v?[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(\\+[a-z0-9.]{1,5})?|\\PC{0,8}", b in "\\PC{0,12}", c in "[0-9.+a-z-]{0,12}") {
        let (a, b, c) = (RecipeVersion::parse(&a), RecipeVersion::parse(&b), RecipeVersion::parse(&c));
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        prop_assert_eq!(a.cmp(&a), std::cmp::Ordering::Equal);
    }

    #[test]
    fn sign_in_returns_stay_on_this_site(path in soup(40), prefix in prop_oneof![Just(""), Just("/"), Just("//"), Just("/%09/"), Just("/\\"), Just("https://")]) {
        let out = crate::domain::identity::login::safe_return_to(Some(&format!("{prefix}{path}")));
        prop_assert!(out.starts_with('/'), "{}", out);
        prop_assert!(!out.starts_with("//") && !out.contains('\\') && !out.chars().any(char::is_control), "{}", out);
        let resolved = url::Url::parse("https://potluck.example").and_then(|b| b.join(&out)).expect("joins");
        prop_assert_eq!(resolved.host_str(), Some("potluck.example"));
    }

    #[test]
    fn recipe_sources_outside_urls_are_for_federation_admins(source in soup(40)) {
        let dir = std::env::temp_dir();
        if crate::domain::recipes::store::check_source(&source, false, &dir).is_ok() {
            let lower = source.to_ascii_lowercase();
            prop_assert!(lower.starts_with("https://") || lower.starts_with("ssh://") || source.contains('@'), "{}", source);
        }
    }
}
