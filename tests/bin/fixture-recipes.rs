//! Publishes fixture recipes as real git repositories for the browser suite (which has no
//! git2): `fixture-recipes <dir> <name>…` builds each of tests/fixtures/recipes/<name> (or
//! ../shared/recipes/<name>) under <dir> and prints one line per recipe:
//! `<name>\t<work tree>\t<bare remote>`. `fixture-recipes tags <repository>` prints the tags of
//! a repository, one per line: `<tag>\t<annotated|lightweight>\t<commit>`.

use potluck_tests::recipes::{fixture_recipe, publish, shared_recipe};
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("tags") {
        let path = args.next().unwrap_or_else(|| panic!("usage: fixture-recipes tags <repository>"));
        let repo = git2::Repository::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for t in potluck_server::adapters::git::tags(&repo).unwrap_or_else(|e| panic!("{path}: {e}")) {
            println!("{}\t{}\t{}", t.name, if t.annotated { "annotated" } else { "lightweight" }, t.commit);
        }
        return;
    }
    let Some(dir) = first.map(PathBuf::from) else {
        eprintln!("usage: fixture-recipes <dir> <recipe>…");
        std::process::exit(2);
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for name in args {
        let own = fixture_recipe(&name);
        let source = if own.is_dir() { own } else { shared_recipe(&name) };
        let (work, remote) = publish(&source, &dir, &name);
        println!("{name}\t{}\t{}", work.display(), remote.display());
    }
}
