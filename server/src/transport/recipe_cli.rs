//! Recipe commands that need no database: `potluck lint` and `potluck catalogue generate`.

use crate::adapters::git::{self, LocalRecipe};
use crate::domain::recipes::catalogue::{self, Catalogue, ParseCache};
use crate::domain::recipes::{lint, store};
use anyhow::{anyhow, Context};
use git2::Repository;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Lints a recipe (a repository, bare or not, or a directory) at a tag or as it is on disk.
pub fn lint_command(recipe: &Path, version: Option<&str>) -> anyhow::Result<ExitCode> {
    let local = LocalRecipe::open(recipe)?;
    let files = local.files(version)?;
    let tags = local.repo.as_ref().map(git::tags).transpose()?.unwrap_or_default();
    let findings = lint::lint_recipe(&files, &local.name(), &tags);
    let what = version.map(|v| format!("{} {v}", local.name())).unwrap_or_else(|| local.name());
    if findings.is_empty() {
        println!("{what}: no findings");
        return Ok(ExitCode::SUCCESS);
    }
    for f in &findings {
        let service = f.service.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
        println!("{} {:<7}{service} {}\n        fix: {}", f.rule, f.level, f.message, f.fix);
    }
    let errors = findings.iter().filter(|f| f.level == "error").count();
    println!("{what}: {errors} error(s), {} warning(s)", findings.len() - errors);
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// One recipe to put in the catalogue: where its repository is and what it is called.
struct Source {
    name: String,
    repository: String,
    path: PathBuf,
}

fn default_branch(repo: &Repository) -> String {
    let b = store::default_branch(repo);
    if !b.is_empty() {
        return b;
    }
    repo.head().ok().and_then(|h| h.shorthand().ok().map(String::from)).unwrap_or_else(|| "main".into())
}

/// The recipes of `--recipes`: a directory of repositories (or one repository), or a file
/// listing git URLs, one per line (cloned bare under `scratch`).
fn sources(recipes: &Path, scratch: &Path) -> anyhow::Result<Vec<Source>> {
    let origin = |repo: &Repository, path: &Path| {
        repo.find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(String::from))
            .unwrap_or_else(|| path.display().to_string())
    };
    if recipes.is_file() {
        let text = std::fs::read_to_string(recipes).with_context(|| format!("cannot read {}", recipes.display()))?;
        let mut out = Vec::new();
        for url in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let name = store::name_from_url(url);
            let path = scratch.join(format!("{name}.git"));
            eprintln!("cloning {url}");
            store::clone_bare(url, &path, None).map_err(|e| anyhow!(e))?;
            out.push(Source { name, repository: url.to_string(), path });
        }
        return Ok(out);
    }
    if let Ok(repo) = Repository::open(recipes) {
        let local = LocalRecipe::open(recipes)?;
        return Ok(vec![Source {
            name: local.name(),
            repository: origin(&repo, recipes),
            path: recipes.to_path_buf(),
        }]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(recipes)
        .with_context(|| format!("cannot read {}", recipes.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for path in entries {
        let Ok(repo) = Repository::open(&path) else { continue };
        let name =
            path.file_name().map(|n| n.to_string_lossy().trim_end_matches(".git").to_string()).unwrap_or_default();
        out.push(Source { name, repository: origin(&repo, &path), path });
    }
    Ok(out)
}

/// Builds the catalogue of `recipes`; progress goes to stderr, one line per recipe.
pub fn generate(recipes: &Path, progress: bool) -> anyhow::Result<Catalogue> {
    let scratch = tempfile::tempdir()?;
    let sources = sources(recipes, scratch.path())?;
    if sources.is_empty() {
        return Err(anyhow!("no recipe repositories in {}", recipes.display()));
    }
    let mut cache = ParseCache::default();
    let mut out = Catalogue::new();
    let total = sources.len();
    for (i, s) in sources.into_iter().enumerate() {
        let repo =
            Repository::open(&s.path).with_context(|| format!("{} is not a git repository", s.path.display()))?;
        let meta = catalogue::recipe_meta(&repo, &s.name, &s.repository, &default_branch(&repo), &mut cache)?;
        if progress {
            eprintln!("[{}/{total}] {}: {} version(s)", i + 1, s.name, meta.versions.len());
        }
        out.insert(s.name, meta);
    }
    Ok(out)
}

pub fn generate_command(recipes: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let catalogue = generate(recipes, true)?;
    let json = serde_json::to_string_pretty(&catalogue)? + "\n";
    if out == Path::new("-") {
        print!("{json}");
    } else {
        std::fs::write(out, json).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("wrote {} recipe(s) to {}", catalogue.len(), out.display());
    }
    Ok(ExitCode::SUCCESS)
}
