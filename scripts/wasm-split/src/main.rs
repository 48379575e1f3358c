//! Two steps of scripts/build.sh around wasm-bindgen:
//!
//! ```text
//! potluck-wasm-split split <app.wasm> <pkg-dir> <main-out.wasm>
//! potluck-wasm-split fingerprint <pkg-dir>        # prints the lines of hash.txt
//! ```
//!
//! `split` cuts the wasm that cargo linked (with `--emit-relocs`) at its `#[lazy]` functions,
//! Leptos' lazy routes: the main module goes to `main-out.wasm` for wasm-bindgen, every route's
//! own code to `split_<name>.wasm`, code that several routes share to `chunk_<n>.wasm`, beside
//! the loader `__wasm_split.<placeholder>.js` and `__wasm_split_manifest.json` (which files each
//! route needs; the server names them in a page's preload links).
//!
//! `fingerprint` renames every file to `<stem>.<16 hex of its sha256>.<ext>` and rewrites the
//! references between them. The loader and the main module name each other, so the loader's
//! name is fixed first, from the content of all three before any rewrite.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use eyre::{bail, ensure, eyre, Result, WrapErr};
use sha2::{Digest, Sha256};

/// Where the loader's fingerprint goes: as long as one, so it is written over in place inside
/// the main wasm's import section.
const PLACEHOLDER: &str = "________________";
/// wasm-bindgen's output name (Leptos' `LEPTOS_OUTPUT_NAME`).
const MAIN: &str = "potluck";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["split", input, out_dir, main_out] => split(Path::new(input), Path::new(out_dir), Path::new(main_out)),
        ["fingerprint", dir] => {
            print!("{}", fingerprint(Path::new(dir))?);
            Ok(())
        }
        _ => bail!("usage: potluck-wasm-split split <app.wasm> <pkg-dir> <main-out.wasm> | fingerprint <pkg-dir>"),
    }
}

fn split(input: &Path, out_dir: &Path, main_out: &Path) -> Result<()> {
    let wasm = fs::read(input).wrap_err_with(|| format!("reading {}", input.display()))?;
    let link_name = format!("./{}", loader_name(PLACEHOLDER));
    let main_module = format!("./{MAIN}.js");
    let mut options = wasm_split_cli_support::Options::new(&wasm);
    options.output_dir = out_dir;
    options.main_out_path = main_out;
    options.link_name = &link_name;
    options.main_module = &main_module;
    let split = wasm_split_cli_support::transform(options).wrap_err("splitting the wasm at its lazy routes")?;
    let manifest: BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    fs::write(out_dir.join(MANIFEST), serde_json::to_string_pretty(&manifest)?)?;
    eprintln!("split {} into a main module and {} lazily loaded modules", input.display(), split.split_modules.len());
    Ok(())
}

const MANIFEST: &str = "__wasm_split_manifest.json";

fn loader_name(hash: &str) -> String {
    format!("__wasm_split.{hash}.js")
}

/// The first 16 hex digits of the sha256 of `parts`, one after the other.
fn fp(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `haystack` with every `from` replaced by `to` (same length, so offsets inside a wasm stay
/// valid), and how many there were.
fn replace_same_length(haystack: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut count = 0;
    let mut at = 0;
    while let Some(found) = haystack[at..].windows(from.len()).position(|w| w == from) {
        let start = at + found;
        haystack[start..start + to.len()].copy_from_slice(to);
        count += 1;
        at = start + from.len();
    }
    count
}

fn write_renamed(dir: &Path, old: &str, new: &str, content: &[u8]) -> Result<()> {
    fs::write(dir.join(new), content).wrap_err_with(|| format!("writing {new}"))?;
    if old != new {
        fs::remove_file(dir.join(old)).wrap_err_with(|| format!("removing {old}"))?;
    }
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    fs::read(dir.join(name)).wrap_err_with(|| format!("reading {}", dir.join(name).display()))
}

fn fingerprint(dir: &Path) -> Result<String> {
    let mut js = read(dir, &format!("{MAIN}.js"))?;
    let mut wasm = read(dir, &format!("{MAIN}.wasm"))?;
    let css = read(dir, &format!("{MAIN}.css"))?;
    let placeholder_loader = loader_name(PLACEHOLDER);
    let mut split_lines = String::new();

    if dir.join(&placeholder_loader).exists() {
        let mut loader = String::from_utf8(read(dir, &placeholder_loader)?)?;
        let mut manifest: BTreeMap<String, Vec<String>> = serde_json::from_slice(&read(dir, MANIFEST)?)?;
        // The routes' modules name nothing else: hash them first, then point the loader and
        // the manifest at the new names.
        let mut modules: Vec<PathBuf> =
            fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
        modules.retain(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            (name.starts_with("split_") || name.starts_with("chunk_"))
                && name.ends_with(".wasm")
                && name.matches('.').count() == 1
        });
        modules.sort();
        let mut chunks = Vec::new();
        for path in &modules {
            let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| eyre!("odd name {}", path.display()))?;
            let stem = name.trim_end_matches(".wasm");
            let content = fs::read(path)?;
            let hashed = format!("{stem}.{}", fp(&[&content]));
            let reference = format!("\"./{stem}.wasm\"");
            ensure!(loader.matches(&reference).count() == 1, "the loader does not fetch {name} exactly once");
            loader = loader.replace(&reference, &format!("\"./{hashed}.wasm\""));
            manifest.values_mut().flatten().filter(|s| *s == stem).for_each(|s| s.clone_from(&hashed));
            chunks.push((name.to_string(), format!("{hashed}.wasm"), content));
        }

        let l = fp(&[loader.as_bytes(), &js, &wasm]);
        let (from, to) = (placeholder_loader.as_bytes(), loader_name(&l));
        let named =
            replace_same_length(&mut js, from, to.as_bytes()) + replace_same_length(&mut wasm, from, to.as_bytes());
        ensure!(named > 0, "the main module does not import its loader {placeholder_loader}");
        for (old, new, content) in chunks {
            // The areas' modules import only what the loader hands them, never the loader by
            // name: their names, hashed before the loader's was known, cover all they hold.
            ensure!(!content.windows(from.len()).any(|w| w == from), "{old} names the loader");
            write_renamed(dir, &old, &new, &content)?;
        }
        // The loader takes the main module's exports from the very module the page imported:
        // the same (fingerprinted) address, or it would get a second, uninitialised copy.
        let main_import = format!("\"./{MAIN}.js\"");
        ensure!(loader.matches(&main_import).count() == 1, "the loader does not import {main_import} exactly once");
        loader = loader.replace(&main_import, &format!("\"./{MAIN}.{}.js\"", fp(&[&js])));
        write_renamed(dir, &placeholder_loader, &to, loader.as_bytes())?;

        for stem in manifest.values().flatten() {
            ensure!(
                dir.join(format!("{stem}.wasm")).exists(),
                "the manifest names {stem}.wasm, which the split did not write"
            );
        }
        let manifest = serde_json::to_string_pretty(&manifest)?;
        let m = fp(&[manifest.as_bytes()]);
        write_renamed(dir, MANIFEST, &format!("__wasm_split_manifest.{m}.json"), manifest.as_bytes())?;
        split_lines = format!("manifest: {m}\nsplit: {l}\n");
    }

    let mut lines = String::new();
    for (ext, content) in [("js", &js), ("wasm", &wasm), ("css", &css)] {
        let h = fp(&[content]);
        write_renamed(dir, &format!("{MAIN}.{ext}"), &format!("{MAIN}.{h}.{ext}"), content)?;
        lines.push_str(&format!("{ext}: {h}\n"));
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file()
            && fs::read(&path)?.windows(placeholder_loader.len()).any(|w| w == placeholder_loader.as_bytes())
        {
            bail!("{} still names the loader's placeholder", path.display());
        }
    }
    Ok(lines + &split_lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_in_place() {
        let mut bytes = b"a__x__b__x__".to_vec();
        assert_eq!(replace_same_length(&mut bytes, b"__x__", b"__y__"), 2);
        assert_eq!(bytes, b"a__y__b__y__");
    }

    /// A package as split and bound (names as the splitter and wasm-bindgen write them), with
    /// `chunk` as the shared module's content.
    fn package(dir: &Path, chunk: &str) {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).unwrap();
        let loader = format!("__wasm_split.{PLACEHOLDER}.js");
        fs::write(dir.join("potluck.js"), format!("import * as s from './{loader}';\nexport function initSync() {{}}"))
            .unwrap();
        fs::write(dir.join("potluck.wasm"), format!("\0asm..{loader}..")).unwrap();
        fs::write(dir.join("potluck.css"), "body {}").unwrap();
        fs::write(
            dir.join(&loader),
            "import { initSync } from \"./potluck.js\";\nconst c = fetch(new URL(\"./chunk_1.wasm\", import.meta.url));\n\
             const a = fetch(new URL(\"./split_area.wasm\", import.meta.url));\nconst b = fetch(new URL(\"./chunk_10.wasm\", import.meta.url));",
        )
        .unwrap();
        fs::write(dir.join(MANIFEST), r#"{"area": ["chunk_1", "chunk_10", "split_area"]}"#).unwrap();
        fs::write(dir.join("chunk_1.wasm"), chunk).unwrap();
        fs::write(dir.join("chunk_10.wasm"), "ten").unwrap();
        fs::write(dir.join("split_area.wasm"), "area").unwrap();
    }

    fn hashes(lines: &str) -> BTreeMap<String, String> {
        lines.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_name_is_fingerprinted_and_every_reference_follows() {
        let dir = std::env::temp_dir().join(format!("potluck-wasm-split-{}", std::process::id()));
        package(&dir, "one");
        let first = hashes(&fingerprint(&dir).unwrap());
        let text = |name: String| fs::read_to_string(dir.join(name)).unwrap();

        let loader = text(format!("__wasm_split.{}.js", first["split"]));
        // The loader imports the very script the page imports, and fetches the hashed modules.
        assert!(loader.contains(&format!("from \"./potluck.{}.js\"", first["js"])), "{loader}");
        let chunk = format!("chunk_1.{}", fp(&[b"one"]));
        assert!(loader.contains(&format!("\"./{chunk}.wasm\"")), "{loader}");
        assert!(loader.contains(&format!("\"./chunk_10.{}.wasm\"", fp(&[b"ten"]))), "{loader}");
        // The main module and its script import the hashed loader.
        let link = format!("__wasm_split.{}.js", first["split"]);
        assert!(text(format!("potluck.{}.js", first["js"])).contains(&link));
        assert!(text(format!("potluck.{}.wasm", first["wasm"])).contains(&link));
        // The manifest names files that exist.
        let manifest: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&text(format!("__wasm_split_manifest.{}.json", first["manifest"]))).unwrap();
        for stem in &manifest["area"] {
            assert!(dir.join(format!("{stem}.wasm")).is_file(), "{stem}");
        }
        assert_eq!(manifest["area"][0], chunk);
        assert!(!dir.join("potluck.js").exists() && !dir.join(MANIFEST).exists());

        // A changed shared module gives new names to everything that leads to it, so no
        // browser keeps a stale one; the stylesheet keeps its name.
        package(&dir, "two");
        let second = hashes(&fingerprint(&dir).unwrap());
        for key in ["js", "wasm", "split", "manifest"] {
            assert_ne!(first[key], second[key], "{key}");
        }
        assert_eq!(first["css"], second["css"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_main_module_that_does_not_import_its_loader_is_refused() {
        let dir = std::env::temp_dir().join(format!("potluck-wasm-split-refused-{}", std::process::id()));
        package(&dir, "one");
        fs::write(dir.join("potluck.js"), "export function initSync() {}").unwrap();
        fs::write(dir.join("potluck.wasm"), "\0asm").unwrap();
        let error = fingerprint(&dir).unwrap_err().to_string();
        assert!(error.contains("does not import its loader"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
