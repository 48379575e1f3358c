//! The server's imports run one way: transport → operations → domain → adapters. These tests read
//! the source and fail on an import that goes back up a layer, and on a crate dependency that
//! would make a page change rebuild the engine (or the other way round).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A file may import its own layer and the layers below it.
const LAYERS: [&str; 4] = ["adapters", "domain", "operations", "transport"];

/// Modules at the crate root that every layer may use: the shared state and configuration, the
/// error type and logging set-up. They are the composition, not a layer.
const SHARED: [&str; 6] = ["state", "config", "error", "telemetry", "properties", "layering"];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == module)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::`, including those inside a
/// grouped import (`use crate::{domain::apps, adapters::db}`).
fn crate_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        // `potluck_server::crate::` never occurs; skip `$crate::` and words ending in `crate`.
        if text[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first identifier of each item at depth 1 of the group.
            let mut depth = 1;
            let mut item_start = true;
            let mut ident = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => item_start = true,
                    c if (c.is_alphanumeric() || c == '_') && item_start && depth == 1 => ident.push(c),
                    _ => {
                        if !ident.is_empty() {
                            found.insert(std::mem::take(&mut ident));
                            item_start = false;
                        }
                    }
                }
            }
            if !ident.is_empty() {
                found.insert(ident);
            }
        } else {
            let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !ident.is_empty() {
                found.insert(ident);
            }
        }
    }
    found
}

/// Every import that goes up a layer, as "file → module".
fn upward_imports(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(root, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap();
        let top =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let Some(own) = rank(&top) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        for module in crate_modules(&text) {
            match rank(&module) {
                Some(r) if r > own => bad.push(format!("{} → crate::{module}", relative.display())),
                Some(_) => {}
                None if SHARED.contains(&module.as_str()) => {}
                None => bad.push(format!("{} → crate::{module} (not a layer: add it to one)", relative.display())),
            }
        }
    }
    bad
}

#[test]
fn imports_run_down_the_layers_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = upward_imports(&root);
    assert!(bad.is_empty(), "imports that go back up a layer:\n  {}", bad.join("\n  "));
}

#[test]
fn the_checker_sees_plain_and_grouped_imports() {
    let text = "use crate::domain::apps;\nuse crate::{transport::http, adapters::{db, git}};\nlet x = $crate::foo;";
    let found: Vec<_> = crate_modules(text).into_iter().collect();
    assert_eq!(found, ["adapters", "domain", "transport"]);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("domain")).unwrap();
    std::fs::write(dir.path().join("domain/x.rs"), "use crate::{adapters::db, operations::registry};").unwrap();
    std::fs::write(dir.path().join("state.rs"), "use crate::transport::http;").unwrap();
    assert_eq!(upward_imports(dir.path()), ["domain/x.rs → crate::operations"]);
}

/// Pages (`potluck-app`) and the engine (`potluck-engine`) do not depend on each other, so a
/// change to one never rebuilds the other.
#[test]
fn pages_and_engine_are_independent_crates() {
    let manifest = |p: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
    let depends = |text: &str, name: &str| {
        let doc: toml::Table = text.parse().unwrap();
        ["dependencies", "dev-dependencies", "build-dependencies"]
            .iter()
            .filter_map(|section| doc.get(*section).and_then(|s| s.as_table()))
            .any(|deps| deps.contains_key(name))
    };
    assert!(!depends(&manifest("engine/Cargo.toml"), "potluck-app"), "the engine depends on the pages");
    assert!(!depends(&manifest("../app/Cargo.toml"), "potluck-engine"), "the pages depend on the engine");
    assert!(depends(&manifest("Cargo.toml"), "potluck-engine"), "the manifest check reads the wrong files");
}
