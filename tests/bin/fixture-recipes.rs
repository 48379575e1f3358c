//! Publishes fixture recipes as real git repositories for the browser suite (which has no
//! git2): `fixture-recipes <dir> <name>…` builds each of tests/fixtures/recipes/<name> (or
//! ../shared/recipes/<name>) under <dir> and prints one line per recipe:
//! `<name>\t<work tree>\t<bare remote>`.

use potluck_tests::recipes::{fixture_recipe, publish, shared_recipe};
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
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
