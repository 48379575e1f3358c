//! Catalogue benchmark (a bench binary): builds recipes.json for ≥100 recipes × ≥10 tags, made
//! from ../shared/recipes, two ways in the same run:
//!
//! - baseline, what abra does: for each tag, `git checkout` it with the git CLI and read the
//!   files from disk, then parse the compose files it selects;
//! - Potluck: read each tag's tree with git2 (no checkout) and parse a compose file once per
//!   distinct blob.
//!
//! Both produce the same services and images (checked), and the ratio is printed (target ≥ 20×).
//!
//!   make bench            (or: cargo bench -p potluck-tests --bench catalogue -- [copies] [tags])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use git2::{IndexAddOption, Repository, Signature};
use potluck_server::adapters::engine::load::RecipeFiles;
use potluck_server::domain::recipes::catalogue::{self, ParseCache};
use potluck_server::domain::recipes::inspect;
use potluck_tests::recipes::shared_recipe;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const RECIPES: [&str; 8] =
    ["bonfire", "bore", "foodsharing-cms", "gaseous", "go-ssb-room", "healthcheck", "lemp-custom-php", "traefik-2021"];

/// The files of a shared recipe as of today (top level, without the snapshot folders).
fn base_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let top = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
            if ["SOURCE", "TAGS", "versions"].contains(&top.as_str()) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A work tree with `tags` annotated releases, each changing compose.yml's version label line.
fn make_repo(dest: &Path, files: &[(PathBuf, Vec<u8>)], tags: usize) {
    let repo = Repository::init(dest).unwrap();
    let sig = Signature::now("bench", "bench@example.org").unwrap();
    for (rel, content) in files {
        std::fs::create_dir_all(dest.join(rel).parent().unwrap()).unwrap();
        std::fs::write(dest.join(rel), content).unwrap();
    }
    let compose =
        String::from_utf8_lossy(&files.iter().find(|(p, _)| p == Path::new("compose.yml")).unwrap().1).into_owned();
    for t in 0..tags {
        let version = format!("1.{t}.0+bench");
        std::fs::write(dest.join("compose.yml"), format!("{compose}\n# release {version}\n")).unwrap();
        let mut index = repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let oid = repo.commit(Some("HEAD"), &sig, &sig, &format!("release {version}"), &tree, &parents).unwrap();
        repo.tag(&version, &repo.find_object(oid, None).unwrap(), &sig, &format!("publish {version}"), false).unwrap();
    }
}

/// recipe → [(tag, [(service, image:tag)])], the part both ways must agree on.
type Catalogue = BTreeMap<String, Vec<(String, Vec<(String, String)>)>>;

fn git() -> &'static str {
    // Debian's git (a wrapper earlier on PATH could add its own overhead).
    if Path::new("/usr/bin/git").exists() {
        "/usr/bin/git"
    } else {
        "git"
    }
}

/// abra's way: check each tag out and read the files from disk.
fn baseline(repos: &[(String, PathBuf)]) -> Catalogue {
    let mut out = BTreeMap::new();
    for (name, path) in repos {
        let tags = Command::new(git()).arg("-C").arg(path).args(["tag", "--list"]).output().unwrap();
        let mut tags: Vec<String> = String::from_utf8(tags.stdout).unwrap().lines().map(String::from).collect();
        tags.sort_by(|a, b| {
            potluck_server::domain::recipes::version::RecipeVersion::parse(a)
                .cmp(&potluck_server::domain::recipes::version::RecipeVersion::parse(b))
        });
        let mut versions = Vec::new();
        for tag in tags {
            let status =
                Command::new(git()).arg("-C").arg(path).args(["checkout", "-q", "--force", &tag]).status().unwrap();
            assert!(status.success(), "checkout {tag}");
            let files = RecipeFiles::from_dir(path).unwrap();
            let images = inspect::images(&files).into_iter().map(|i| {
                let (image, tag) = catalogue::split_image(&i.image);
                (i.service, format!("{image}:{tag}"))
            });
            let mut images: Vec<(String, String)> = images.collect();
            images.sort();
            versions.push((tag, images));
        }
        out.insert(name.clone(), versions);
    }
    out
}

/// Potluck's way: the catalogue from git objects.
fn potluck(repos: &[(String, PathBuf)]) -> Catalogue {
    let mut cache = ParseCache::default();
    let mut out = BTreeMap::new();
    for (name, path) in repos {
        let repo = Repository::open(path).unwrap();
        let meta = catalogue::recipe_meta(&repo, name, &path.display().to_string(), "master", &mut cache).unwrap();
        let versions = meta
            .versions
            .into_iter()
            .flat_map(|v| v.into_iter())
            .map(|(tag, services)| {
                let mut images: Vec<(String, String)> =
                    services.into_iter().map(|(s, m)| (s, format!("{}:{}", m.image, m.tag))).collect();
                images.sort();
                (tag, images)
            })
            .collect();
        out.insert(name.clone(), versions);
    }
    out
}

fn main() {
    let copies: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(13);
    let tags: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut repos = Vec::new();
    for recipe in RECIPES {
        let files = base_files(&shared_recipe(recipe));
        for k in 0..copies {
            let name = format!("{recipe}-{k:02}");
            let path = dir.path().join(&name);
            make_repo(&path, &files, tags);
            repos.push((name, path));
        }
    }
    println!("corpus: {} recipes × {tags} tags, built in {:.1} s", repos.len(), t.elapsed().as_secs_f64());

    let t = Instant::now();
    let ours = potluck(&repos);
    let potluck_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let theirs = baseline(&repos);
    let baseline_secs = t.elapsed().as_secs_f64();
    assert_eq!(ours, theirs, "both ways find the same services and images");

    let ratio = baseline_secs / potluck_secs;
    println!("baseline (git checkout + read from disk): {baseline_secs:.2} s");
    println!("potluck  (git2 trees, parse per blob):    {potluck_secs:.3} s");
    println!("ratio: {ratio:.1}× faster (target ≥ 20×) {}", if ratio >= 20.0 { "✓" } else { "✗ BELOW TARGET" });
}
