//! A recipe README's metadata block (`<!-- metadata -->` … `<!-- endmetadata -->`), read
//! leniently: `*` or `-` bullets, `**Key**: value` or `Key: value`, empty values, emoji scores.

/// `(key, value)` pairs in order, keys as written (`Category`, `Status`…).
pub fn parse(readme: &str) -> Vec<(String, String)> {
    let Some(start) = readme.find("<!-- metadata -->") else { return Vec::new() };
    let rest = &readme[start + "<!-- metadata -->".len()..];
    let block = rest.split("<!-- endmetadata -->").next().unwrap_or(rest);
    let mut out = Vec::new();
    for line in block.lines() {
        let line = line.trim().trim_start_matches(['*', '-']).trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = if let Some(after) = line.strip_prefix("**") {
            match after.split_once("**") {
                Some((k, v)) => (k.trim().trim_end_matches(':'), v.trim().trim_start_matches(':').trim()),
                None => continue,
            }
        } else {
            match line.split_once(':') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => continue,
            }
        };
        if !key.is_empty() {
            out.push((key.to_string(), value.to_string()));
        }
    }
    out
}

/// A metadata value by key, case-insensitively.
pub fn get<'a>(meta: &'a [(String, String)], key: &str) -> Option<&'a str> {
    meta.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

/// The README's first paragraph of prose (after the title, outside the metadata block), with
/// markdown links reduced to their text.
pub fn description(readme: &str) -> String {
    let mut in_meta = false;
    let mut para = Vec::new();
    for line in readme.lines() {
        let t = line.trim();
        if t.contains("<!-- metadata -->") {
            in_meta = true;
            continue;
        }
        if t.contains("<!-- endmetadata -->") {
            in_meta = false;
            continue;
        }
        if in_meta || t.starts_with('#') || t.starts_with("[![") {
            if !para.is_empty() {
                break;
            }
            continue;
        }
        if t.is_empty() {
            if !para.is_empty() {
                break;
            }
            continue;
        }
        para.push(t.to_string());
    }
    strip_links(&para.join(" "))
}

fn strip_links(s: &str) -> String {
    // [text](url) → text
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](") else { break };
        let Some(end) = rest[open + close..].find(')') else { break };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..open + close]);
        rest = &rest[open + close + end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# bonfire\n\nA [coop-cloud](https://coopcloud.tech) recipe for deploying [Bonfire](https://bonfirenetworks.org)\n\n<!-- metadata -->\n* **Category**: Apps\n* **Status**: 1, alpha\n* **Image**: [`bonfirenetworks/bonfire`](https://hub.docker.com/r/x), 4, upstream\n* **Healthcheck**:\n- Backups: Yes\n<!-- endmetadata -->\n\n## Usage\n";

    #[test]
    fn reads_the_block_leniently() {
        let m = parse(README);
        assert_eq!(get(&m, "category"), Some("Apps"));
        assert_eq!(get(&m, "Status"), Some("1, alpha"));
        assert_eq!(get(&m, "Healthcheck"), Some(""));
        assert_eq!(get(&m, "Backups"), Some("Yes"));
        assert!(get(&m, "Image").unwrap().starts_with("[`bonfirenetworks/bonfire`]"));
        assert!(parse("# no block").is_empty());
    }

    #[test]
    fn describes() {
        assert_eq!(description(README), "A coop-cloud recipe for deploying Bonfire");
    }
}
