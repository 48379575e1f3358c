//! App env files (`~/.abra/servers/<server>/<domain>.env`, a recipe's `.env.sample`) as abra
//! reads them: godotenv's rules. The parsed file keeps every byte of the original — comments,
//! blank lines, quoting — so that editing one value and writing the file back changes only that
//! value, and an imported file exports back identical.
//!
//! Rules (godotenv): blank lines and `#` lines are skipped; an optional `export ` prefix;
//! `KEY=VALUE` or `KEY: VALUE`; unquoted values are trimmed and lose an inline comment that
//! starts with white space + `#` (which is where recipes put modifiers such as
//! `# length=128`); `'single'` quotes are literal; `"double"` quotes take `\n`, `\r` and
//! backslash escapes and may span lines; `$VAR` and `${VAR}` (upper-case names) expand from the
//! keys defined earlier, then from the outer environment, else to nothing.

use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvError {
    pub line: usize,
    pub message: String,
}

/// How a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    None,
    Single,
    Double,
}

/// One `KEY=VALUE` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The value as written between the quotes (or trimmed, without its comment).
    pub raw_value: String,
    pub quote: Quote,
    /// The inline comment after an unquoted value, without the `#` (modifiers live here).
    pub inline_comment: Option<String>,
    /// Comment lines directly above the entry, without their `#`: what the recipe says about it.
    pub doc: Vec<String>,
    /// 1-based line of the entry.
    pub line: usize,
    /// Whether the line had an `export ` prefix.
    pub export: bool,
}

impl Entry {
    /// The `key=value` pairs of the inline comment: `# length=128 charset=hex` → {length: 128, …}.
    pub fn modifiers(&self) -> BTreeMap<String, String> {
        self.inline_comment
            .as_deref()
            .map(|c| {
                c.split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.trim_end_matches(',').to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Text kept verbatim (blank lines, comments, line ends).
    Text(String),
    /// An entry and the exact text it was written as.
    Entry { entry: Entry, raw: String },
}

/// An env file, editable without losing its form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvFile {
    segments: Vec<Segment>,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// An env file is at most this long…
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// …each value, once `$VAR`s are expanded, at most this long…
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// …and all values together at most this long (`A=$B$B` on a few lines grows exponentially).
pub const MAX_EXPANDED_BYTES: usize = 1024 * 1024;

impl EnvFile {
    pub fn parse(text: &str) -> Result<EnvFile, EnvError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(EnvError {
                line: text[..MAX_FILE_BYTES].matches('\n').count() + 1,
                message: format!("the file is longer than {} KiB", MAX_FILE_BYTES / 1024),
            });
        }
        let file = Self::parse_unbounded(text)?;
        file.check_expansion()?;
        Ok(file)
    }

    /// Refuses a file whose values, expanded, would exceed [`MAX_VALUE_BYTES`] each or
    /// [`MAX_EXPANDED_BYTES`] together, naming the line; only lengths are computed.
    fn check_expansion(&self) -> Result<(), EnvError> {
        let mut lengths: IndexMap<&str, usize> = IndexMap::new();
        let mut total: usize = 0;
        for e in self.entries() {
            let len = match e.quote {
                Quote::Single => e.raw_value.len(),
                Quote::Double => expanded_len(&unescape(&e.raw_value), &lengths),
                Quote::None => expanded_len(&e.raw_value, &lengths),
            };
            if len > MAX_VALUE_BYTES {
                return Err(EnvError {
                    line: e.line,
                    message: format!("{} expands to more than {} KiB", e.key, MAX_VALUE_BYTES / 1024),
                });
            }
            total = total.saturating_add(len);
            if total > MAX_EXPANDED_BYTES {
                return Err(EnvError {
                    line: e.line,
                    message: format!("the values expand to more than {} KiB in all", MAX_EXPANDED_BYTES / 1024),
                });
            }
            lengths.insert(&e.key, len);
        }
        Ok(())
    }

    fn parse_unbounded(text: &str) -> Result<EnvFile, EnvError> {
        let mut segments = Vec::new();
        let mut pending_doc: Vec<String> = Vec::new();
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let byte_at = |i: usize| chars.get(i).map_or(text.len(), |(b, _)| *b);
        // Line numbers, counted once (not by rescanning the text for every entry).
        let newlines: Vec<usize> = text.match_indices('\n').map(|(b, _)| b).collect();
        let line_of = |b: usize| newlines.partition_point(|&n| n < b) + 1;
        let mut i = 0;
        while i < chars.len() {
            let line_start = i;
            // Leading white space of the line.
            let mut j = i;
            while j < chars.len() && (chars[j].1 == ' ' || chars[j].1 == '\t' || chars[j].1 == '\r') {
                j += 1;
            }
            if j >= chars.len() || chars[j].1 == '\n' {
                let end = (j + 1).min(chars.len());
                segments.push(Segment::Text(text[byte_at(line_start)..byte_at(end)].to_string()));
                pending_doc.clear();
                i = end;
                continue;
            }
            if chars[j].1 == '#' || text[byte_at(j)..].starts_with("---") {
                let mut k = j;
                while k < chars.len() && chars[k].1 != '\n' {
                    k += 1;
                }
                let end = (k + 1).min(chars.len());
                let body = &text[byte_at(j)..byte_at(k)];
                if let Some(doc) = body.strip_prefix('#') {
                    pending_doc.push(doc.strip_prefix(' ').unwrap_or(doc).trim_end().to_string());
                }
                segments.push(Segment::Text(text[byte_at(line_start)..byte_at(end)].to_string()));
                i = end;
                continue;
            }
            let line = line_of(byte_at(j));
            let err = |message: String| EnvError { line, message };
            // Optional `export `.
            let mut export = false;
            if text[byte_at(j)..].starts_with("export") && matches!(chars.get(j + 6), Some((_, ' ' | '\t'))) {
                export = true;
                j += 6;
                while j < chars.len() && (chars[j].1 == ' ' || chars[j].1 == '\t') {
                    j += 1;
                }
            }
            let key_start = j;
            while j < chars.len() && chars[j].1 != '=' && chars[j].1 != ':' && chars[j].1 != '\n' {
                let c = chars[j].1;
                if !(is_key_char(c) || c == ' ' || c == '\t') {
                    return Err(err(format!("unexpected character {c:?} in a variable name")));
                }
                j += 1;
            }
            if j >= chars.len() || chars[j].1 == '\n' {
                let shown = text[byte_at(key_start)..byte_at(j)].trim().to_string();
                return Err(err(format!("{shown:?} has no '=': write KEY=VALUE")));
            }
            let key = text[byte_at(key_start)..byte_at(j)].trim().to_string();
            if key.is_empty() {
                return Err(err("a line starts with '=' and has no variable name".into()));
            }
            j += 1; // '=' or ':'
            while j < chars.len() && (chars[j].1 == ' ' || chars[j].1 == '\t') {
                j += 1;
            }
            let (raw_value, quote, inline_comment, end) =
                if j < chars.len() && (chars[j].1 == '\'' || chars[j].1 == '"') {
                    let q = chars[j].1;
                    let mut k = j + 1;
                    while k < chars.len() && !(chars[k].1 == q && chars[k - 1].1 != '\\') {
                        k += 1;
                    }
                    if k >= chars.len() {
                        return Err(err(format!("the quoted value of {key} is never closed")));
                    }
                    let value = text[byte_at(j + 1)..byte_at(k)].to_string();
                    // Whatever follows the closing quote on that line is ignored (kept in the raw text).
                    let mut e = k + 1;
                    while e < chars.len() && chars[e].1 != '\n' {
                        e += 1;
                    }
                    let rest = text[byte_at(k + 1)..byte_at(e)].trim();
                    let comment = rest.strip_prefix('#').map(|c| c.trim().to_string());
                    (value, if q == '\'' { Quote::Single } else { Quote::Double }, comment, e)
                } else {
                    let mut e = j;
                    while e < chars.len() && chars[e].1 != '\n' {
                        e += 1;
                    }
                    let line_text = &text[byte_at(j)..byte_at(e)];
                    // The right-most '#' that follows white space starts a comment.
                    let bytes = line_text.as_bytes();
                    let mut cut = bytes.len();
                    for p in (1..bytes.len()).rev() {
                        if bytes[p] == b'#' && (bytes[p - 1] == b' ' || bytes[p - 1] == b'\t') {
                            cut = p;
                            break;
                        }
                    }
                    let comment = (cut < bytes.len()).then(|| line_text[cut + 1..].trim().to_string());
                    (line_text[..cut].trim_matches([' ', '\t', '\r']).to_string(), Quote::None, comment, e)
                };
            let end_with_newline = (end + 1).min(chars.len());
            let raw = text[byte_at(line_start)..byte_at(end_with_newline)].to_string();
            let entry =
                Entry { key, raw_value, quote, inline_comment, doc: std::mem::take(&mut pending_doc), line, export };
            segments.push(Segment::Entry { entry, raw });
            i = end_with_newline;
        }
        Ok(EnvFile { segments })
    }

    /// Every entry, in file order (a key may appear more than once; the last one counts).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Entry { entry, .. } => Some(entry),
            Segment::Text(_) => None,
        })
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().filter(|e| e.key == key).last()
    }

    /// The values abra sees, in order of first definition, with `$VAR` expanded from earlier
    /// keys and then from `outer`.
    pub fn values(&self, outer: &dyn Fn(&str) -> Option<String>) -> IndexMap<String, String> {
        let mut out: IndexMap<String, String> = IndexMap::new();
        for e in self.entries() {
            let value = match e.quote {
                Quote::Single => e.raw_value.clone(),
                Quote::Double => expand(&unescape(&e.raw_value), &out, outer),
                Quote::None => expand(&e.raw_value, &out, outer),
            };
            out.insert(e.key.clone(), value);
        }
        out
    }

    /// Sets `key` to `value`: rewrites the last line defining it (keeping its inline comment,
    /// e.g. modifiers) or appends a new line.
    pub fn set(&mut self, key: &str, value: &str) {
        let written = write_value(value);
        let position =
            self.segments.iter().rposition(|s| matches!(s, Segment::Entry { entry, .. } if entry.key == key));
        match position {
            Some(p) => {
                if let Segment::Entry { entry, raw } = &mut self.segments[p] {
                    let newline = if raw.ends_with('\n') { "\n" } else { "" };
                    let comment = entry.inline_comment.as_deref().map(|c| format!(" # {c}")).unwrap_or_default();
                    let export = if entry.export { "export " } else { "" };
                    *raw = format!("{export}{key}={written}{comment}{newline}");
                    entry.raw_value = unquoted_form(&written);
                    entry.quote = quote_of(&written);
                }
            }
            None => {
                if let Some(Segment::Text(t) | Segment::Entry { raw: t, .. }) = self.segments.last_mut() {
                    if !t.ends_with('\n') {
                        t.push('\n');
                    }
                }
                let raw = format!("{key}={written}\n");
                let entry = Entry {
                    key: key.to_string(),
                    raw_value: unquoted_form(&written),
                    quote: quote_of(&written),
                    inline_comment: None,
                    doc: Vec::new(),
                    line: 0,
                    export: false,
                };
                self.segments.push(Segment::Entry { entry, raw });
            }
        }
    }

    /// Removes every line defining `key`.
    pub fn remove(&mut self, key: &str) {
        self.segments.retain(|s| !matches!(s, Segment::Entry { entry, .. } if entry.key == key));
    }
}

impl fmt::Display for EnvFile {
    /// The file, byte for byte as parsed (plus any edits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            match s {
                Segment::Text(t) | Segment::Entry { raw: t, .. } => f.write_str(t)?,
            }
        }
        Ok(())
    }
}

/// How a value is written back: bare when it is safe, else single-quoted (literal), else
/// double-quoted with escapes.
///
/// godotenv (and so abra) ends a quoted value at the first quote not preceded by a backslash, so
/// a value that ends with a backslash reads back only when written bare; one that also needs
/// quotes (a space, say) cannot be written so that abra reads it back at all.
fn write_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:,@+=%~^\\".contains(c))
        && !value.contains(" #")
        && !value.contains("\\$");
    if bare {
        value.to_string()
    } else if !value.contains('\'') && !value.contains('\n') && !value.ends_with('\\') {
        format!("'{value}'")
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('$', "\\$");
        format!("\"{escaped}\"")
    }
}

fn quote_of(written: &str) -> Quote {
    match written.chars().next() {
        Some('\'') => Quote::Single,
        Some('"') => Quote::Double,
        _ => Quote::None,
    }
}

fn unquoted_form(written: &str) -> String {
    match quote_of(written) {
        Quote::None => written.to_string(),
        _ => written[1..written.len() - 1].to_string(),
    }
}

/// Double-quote escapes: `\n`, `\r`, and a backslash before any other character.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            // `\$` stays escaped until expansion, which turns it into a literal `$`.
            Some('$') => out.push_str("\\$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The length of `s` expanded, given the expanded lengths of the keys defined before.
fn expanded_len(s: &str, defined: &IndexMap<&str, usize>) -> usize {
    let mut len: usize = 0;
    scan(s, &mut |piece| {
        len = len.saturating_add(match piece {
            Piece::Text(t) => t.len(),
            Piece::Var(name) => defined.get(name).copied().unwrap_or(0),
        })
    });
    len
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits `s` into literal text and `$VAR` / `${VAR}` references (upper-case names, digits and
/// `_`); `\$` is a literal `$`.
fn scan<'a>(s: &'a str, f: &mut dyn FnMut(Piece<'a>)) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'$') {
            f(Piece::Text("$"));
            i += 2;
            continue;
        }
        if b[i] != b'$' {
            let start = i;
            while i < b.len() && b[i] != b'$' && !(b[i] == b'\\' && b.get(i + 1) == Some(&b'$')) {
                i += 1;
            }
            f(Piece::Text(&s[start..i]));
            continue;
        }
        let braced = b.get(i + 1) == Some(&b'{');
        let start = if braced { i + 2 } else { i + 1 };
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_uppercase() || b[end].is_ascii_digit() || b[end] == b'_') {
            end += 1;
        }
        if end == start {
            f(Piece::Text("$"));
            i += 1;
            continue;
        }
        f(Piece::Var(&s[start..end]));
        i = if braced && b.get(end) == Some(&b'}') { end + 1 } else { end };
    }
}

/// `$VAR` / `${VAR}` expansion (upper-case names, digits and `_`); `\$` is a literal `$`.
/// Values from `outer` are taken as they are; the result never exceeds [`MAX_VALUE_BYTES`]
/// (what `parse` checks for the file's own values).
fn expand(s: &str, defined: &IndexMap<String, String>, outer: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    scan(s, &mut |piece| {
        if out.len() >= MAX_VALUE_BYTES {
            return;
        }
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => match defined.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&outer(name).unwrap_or_default()),
            },
        }
    });
    if out.len() > MAX_VALUE_BYTES {
        let mut cut = MAX_VALUE_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The options a sample offers commented out (`#APP_FLAVOUR=social`,
/// `# COMPOSE_FILE="$COMPOSE_FILE:compose.mail.yml"`), in order: each comment line that parses
/// as one `KEY=VALUE` entry with an upper-case key.
pub fn commented_entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(body) = line.trim_start().strip_prefix('#') else {
            doc.clear();
            continue;
        };
        let one = body.strip_prefix(' ').unwrap_or(body).trim_end().to_string();
        let body = body.trim_start_matches('#').trim();
        let key_end = body.find('=').unwrap_or(0);
        let key = &body[..key_end];
        let looks_like_entry =
            !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        match looks_like_entry.then(|| EnvFile::parse(body).ok()).flatten().and_then(|p| p.entries().next().cloned()) {
            Some(mut e) => {
                e.line = i + 1;
                e.doc = std::mem::take(&mut doc);
                out.push(e);
            }
            None => doc.push(one),
        }
    }
    out
}

/// The `export NAME=VALUE` lines of a recipe's `abra.sh` (config versions), in order.
pub fn abra_sh_exports(text: &str) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("export") else { continue };
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        let rest = rest.trim();
        let Some((name, value)) = rest.split_once('=') else { continue };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            continue;
        }
        let value = value.trim_end();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"')) || (value.starts_with('\'') && value.ends_with('\'')))
        {
            &value[1..value.len() - 1]
        } else {
            value
        };
        out.insert(name.to_string(), value.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_outer(_: &str) -> Option<String> {
        None
    }

    const SAMPLE: &str = r#"TYPE=bonfire

# The domain of your app
DOMAIN=bonfire.example.com
## Domain aliases
#EXTRA_DOMAINS=', `www.bonfire.example.com`'
LETS_ENCRYPT_ENV=production

COMPOSE_FILE="compose.yml"
COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"
# COMPOSE_FILE="$COMPOSE_FILE:compose.mail.yml"

SECRET_SECRET_KEY_BASE_VERSION=v1 # length=128
SECRET_API_KEY_VERSION=v1 # generate=false
export TIMEOUT=300
LITERAL='$DOMAIN stays'
QUOTED="a # b\nc"
EMPTY=
SPACED =  value with spaces   # a comment
"#;

    #[test]
    fn reads_values_like_abra() {
        let f = EnvFile::parse(SAMPLE).unwrap();
        let v = f.values(&no_outer);
        assert_eq!(v["DOMAIN"], "bonfire.example.com");
        assert_eq!(v["COMPOSE_FILE"], "compose.yml:compose.postgres.yml");
        assert_eq!(v["SECRET_SECRET_KEY_BASE_VERSION"], "v1");
        assert_eq!(v["TIMEOUT"], "300");
        assert_eq!(v["LITERAL"], "$DOMAIN stays");
        assert_eq!(v["QUOTED"], "a # b\nc");
        assert_eq!(v["EMPTY"], "");
        assert_eq!(v["SPACED"], "value with spaces");
        assert!(!v.contains_key("EXTRA_DOMAINS"));
    }

    #[test]
    fn keeps_modifiers_and_docs() {
        let f = EnvFile::parse(SAMPLE).unwrap();
        let e = f.entry("SECRET_SECRET_KEY_BASE_VERSION").unwrap();
        assert_eq!(e.modifiers().get("length").map(String::as_str), Some("128"));
        assert_eq!(f.entry("SECRET_API_KEY_VERSION").unwrap().modifiers()["generate"], "false");
        assert_eq!(f.entry("DOMAIN").unwrap().doc, vec!["The domain of your app"]);
        assert!(f.entry("TIMEOUT").unwrap().export);
    }

    #[test]
    fn round_trips_byte_for_byte_and_edits_one_line() {
        let mut f = EnvFile::parse(SAMPLE).unwrap();
        assert_eq!(f.to_string(), SAMPLE);
        f.set("SECRET_SECRET_KEY_BASE_VERSION", "v2");
        f.set("DOMAIN", "social.example.org");
        f.set("NEW_KEY", "has spaces and $dollar");
        let text = f.to_string();
        assert!(text.contains("SECRET_SECRET_KEY_BASE_VERSION=v2 # length=128\n"));
        assert!(text.contains("\nDOMAIN=social.example.org\n"));
        assert!(text.ends_with("NEW_KEY='has spaces and $dollar'\n"));
        let again = EnvFile::parse(&text).unwrap().values(&no_outer);
        assert_eq!(again["NEW_KEY"], "has spaces and $dollar");
        assert_eq!(again["DOMAIN"], "social.example.org");
        // Only the edited lines changed.
        let changed = SAMPLE.lines().zip(text.lines()).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 2);
    }

    #[test]
    fn writes_values_that_read_back() {
        for value in ["plain", "", "a b", "it's $X", "quote \" and ' and $", "multi\nline", "x #not-a-comment"] {
            let mut f = EnvFile::default();
            f.set("K", value);
            let back = EnvFile::parse(&f.to_string()).unwrap().values(&no_outer);
            assert_eq!(back["K"], value, "{}", f);
        }
    }

    #[test]
    fn expands_from_the_outer_environment() {
        let f = EnvFile::parse("A=$HOME/x\nB=${A}-y\nC=$lower\n").unwrap();
        let outer = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let v = f.values(&outer);
        assert_eq!(v["A"], "/root/x");
        assert_eq!(v["B"], "/root/x-y");
        assert_eq!(v["C"], "$lower", "lower-case names are not variables");
    }

    #[test]
    fn expansion_bombs_are_refused_with_the_line() {
        // Twelve short lines: each doubles the one before (4 KiB × 2^11 ≫ the caps).
        let mut text = format!("A0={}\n", "x".repeat(4096));
        for i in 1..12 {
            text.push_str(&format!("A{i}=$A{}$A{}\n", i - 1, i - 1));
        }
        let e = EnvFile::parse(&text).unwrap_err();
        assert!(e.message.contains("expands to more than"), "{e}");
        assert_eq!(e.line, 6, "{e}");
        // Within the caps, the same shape works.
        let ok = EnvFile::parse("A=ab\nB=$A$A\nC=${B}-$B\n").unwrap();
        assert_eq!(ok.values(&no_outer)["C"], "abab-abab");
        // A file that is simply too long.
        let long = "K=v\n".repeat(MAX_FILE_BYTES / 4 + 1);
        assert!(EnvFile::parse(&long).unwrap_err().message.contains("longer than"));
    }

    #[test]
    fn clear_errors() {
        assert_eq!(EnvFile::parse("A=1\nnot a line\n").unwrap_err().line, 2);
        assert!(EnvFile::parse("A=\"never closed\n").unwrap_err().message.contains("never closed"));
        assert!(EnvFile::parse("B$=1\n").unwrap_err().message.contains("unexpected character"));
    }

    #[test]
    fn commented_options() {
        let c = commented_entries(SAMPLE);
        let keys: Vec<&str> = c.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["EXTRA_DOMAINS", "COMPOSE_FILE"]);
        assert_eq!(c[1].raw_value, "$COMPOSE_FILE:compose.mail.yml");
    }

    #[test]
    fn abra_sh_exports_only() {
        let sh = "#!/bin/bash\nexport APP_ENTRYPOINT_VERSION=v4\nexport PG_BACKUP_VERSION=\"v6\"\nfoo() { export X=1; }\nexportNOT=1\n";
        let e = abra_sh_exports(sh);
        assert_eq!(e["APP_ENTRYPOINT_VERSION"], "v4");
        assert_eq!(e["PG_BACKUP_VERSION"], "v6");
        assert!(!e.contains_key("exportNOT"));
    }
}
