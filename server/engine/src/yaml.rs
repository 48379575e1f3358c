//! Compose files read the way the Docker CLI reads them (Go's yaml.v3): plain scalars resolve to
//! null, booleans (`true`/`True`/`TRUE`, `false`/…), integers in Go's base-0 syntax (so a legacy
//! `0440` is octal), floats, else strings; quoted scalars are always strings; anchors, aliases
//! and `<<` merge keys work; mapping keys must be strings. Parsing is yaml-rust2's event parser;
//! only the typing of scalars is done here.

use indexmap::IndexMap;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Node>),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut IndexMap<String, Node>> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match self {
            Node::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The value at a dotted path of map keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// A scalar as the text Go's `fmt.Sprint` would give (for env values, labels, …).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Null => Some(String::new()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(go_float(*f)),
            Node::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The name Go's JSON schema library gives this value's type in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "boolean",
            Node::Int(_) => "integer",
            Node::Float(_) => "number",
            Node::Str(_) => "string",
            Node::Seq(_) => "array",
            Node::Map(_) => "object",
        }
    }

    /// As JSON (for rendering).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => (*b).into(),
            Node::Int(i) => (*i).into(),
            Node::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Node::Str(s) => s.clone().into(),
            Node::Seq(s) => s.iter().map(Node::to_json).collect(),
            Node::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>().into(),
        }
    }
}

/// Go's `%v` of a float64: shortest representation, exponent for large/small values.
pub fn go_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    let exp = if f == 0.0 { 0 } else { f.abs().log10().floor() as i32 };
    if !(-4..21).contains(&exp) {
        let s = format!("{f:e}");
        // Rust: 1e21, Go: 1e+21
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{:0>2}", e),
            Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
            None => s,
        }
    } else {
        let s = format!("{f}");
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);

enum Frame {
    Seq(usize, Vec<Node>),
    Map { anchor: usize, map: IndexMap<String, Node>, key: Option<String>, merges: Vec<Node>, pending_merge: bool },
}

/// A compose file is at most this long…
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// …nested at most this deep (compose files nest a handful of levels)…
pub const MAX_DEPTH: usize = 128;
/// …and decodes to at most this many nodes and bytes of scalars, aliases expanded.
pub const MAX_NODES: usize = 2_000_000;
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

struct Builder {
    stack: Vec<Frame>,
    /// Nodes and scalar bytes decoded so far inside each open frame (a parallel stack).
    sizes: Vec<(usize, usize)>,
    anchors: HashMap<usize, (Node, usize, usize)>,
    root: Option<Node>,
    error: Option<String>,
    documents: usize,
    /// Nodes decoded, aliases expanded, and those that came from aliases (as yaml.v3 counts).
    decoded: usize,
    aliased: usize,
    decoded_bytes: usize,
}

/// yaml.v3's allowed share of aliased nodes: generous for small documents, 10 % for large ones.
fn allowed_alias_ratio(decoded: usize) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let d = decoded as f64;
    if d <= LOW {
        0.99
    } else if d >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * (d - LOW) / (HIGH - LOW)
    }
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    } else {
        if !digits(&mut i) {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() {
        return None;
    }
    let v = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if v <= (i64::MAX as u64) + 1 {
            Some((v as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// yaml.v3's resolution of an untagged plain scalar.
pub fn resolve_plain(s: &str) -> Node {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Node::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Node::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Node::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        if let Ok(f) = s.parse::<f64>() {
            if is_yaml_float(s) {
                return Node::Float(f);
            }
        }
        return Node::Str(s.to_string());
    }
    if first.is_ascii_digit() || first == b'+' || first == b'-' {
        let plain = s.replace('_', "");
        if let Some(i) = go_parse_int(&plain) {
            return Node::Int(i);
        }
        if let Some(u) =
            plain.strip_prefix('+').unwrap_or(&plain).parse::<u64>().ok().filter(|_| !plain.starts_with('-'))
        {
            return Node::Float(u as f64);
        }
        if is_yaml_float(&plain) {
            if let Ok(f) = plain.parse::<f64>() {
                return Node::Float(f);
            }
        }
    }
    Node::Str(s.to_string())
}

impl Builder {
    fn open(&mut self, frame: Frame) {
        if self.stack.len() >= MAX_DEPTH {
            self.error.get_or_insert(format!("the document nests deeper than {MAX_DEPTH} levels"));
            return;
        }
        self.stack.push(frame);
        self.sizes.push((0, 0));
    }

    fn push_value(&mut self, value: Node, anchor: usize, size: (usize, usize)) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size.0, size.1));
        }
        if let Some(s) = self.sizes.last_mut() {
            s.0 = s.0.saturating_add(size.0);
            s.1 = s.1.saturating_add(size.1);
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(value);
                }
            }
            Some(Frame::Seq(_, items)) => items.push(value),
            Some(Frame::Map { map, key, merges, pending_merge, .. }) => {
                if *pending_merge {
                    *pending_merge = false;
                    match value {
                        Node::Seq(items) => merges.extend(items),
                        other => merges.push(other),
                    }
                    return;
                }
                match key.take() {
                    None => {
                        let k = match &value {
                            Node::Str(s) => s.clone(),
                            other => {
                                self.error.get_or_insert(format!(
                                    "Non-string key: {}",
                                    other.scalar_text().unwrap_or_else(|| other.type_name().to_string())
                                ));
                                String::new()
                            }
                        };
                        *key = Some(k);
                    }
                    Some(k) => {
                        if map.contains_key(&k) {
                            self.error.get_or_insert(format!("mapping key {k:?} already defined"));
                        }
                        map.insert(k, value);
                    }
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(value, style, anchor, tag) => {
                // A plain `<<` in key position is a merge key.
                if style == TScalarStyle::Plain && value == "<<" && tag.is_none() {
                    if let Some(Frame::Map { key: None, pending_merge, .. }) = self.stack.last_mut() {
                        *pending_merge = true;
                        return;
                    }
                }
                let node = match (&tag, style) {
                    (Some(t), _) if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" => match t.suffix.as_str() {
                        "str" => Node::Str(value),
                        "null" => Node::Null,
                        "bool" | "int" | "float" => resolve_plain(&value),
                        "binary" => {
                            use base64::Engine;
                            let clean: String = value.split_whitespace().collect();
                            match base64::engine::general_purpose::STANDARD.decode(clean) {
                                Ok(bytes) => Node::Str(String::from_utf8_lossy(&bytes).into_owned()),
                                Err(e) => {
                                    self.error = Some(format!("invalid !!binary value: {e}"));
                                    return;
                                }
                            }
                        }
                        _ => Node::Str(value),
                    },
                    (Some(_), _) => Node::Str(value),
                    (None, TScalarStyle::Plain) => resolve_plain(&value),
                    (None, _) => Node::Str(value),
                };
                self.decoded += 1;
                let bytes = match &node {
                    Node::Str(v) => v.len(),
                    _ => 8,
                };
                self.push_value(node, anchor, (1, bytes));
            }
            Event::SequenceStart(anchor, _) => {
                self.decoded += 1;
                self.open(Frame::Seq(anchor, Vec::new()))
            }
            Event::SequenceEnd => {
                let (n, b) = self.sizes.pop().unwrap_or((0, 0));
                let size = (n + 1, b);
                if let Some(Frame::Seq(anchor, items)) = self.stack.pop() {
                    self.push_value(Node::Seq(items), anchor, size);
                }
            }
            Event::MappingStart(anchor, _) => {
                self.decoded += 1;
                self.open(Frame::Map {
                    anchor,
                    map: IndexMap::new(),
                    key: None,
                    merges: Vec::new(),
                    pending_merge: false,
                })
            }
            Event::MappingEnd => {
                let (n, b) = self.sizes.pop().unwrap_or((0, 0));
                let size = (n + 1, b);
                if let Some(Frame::Map { anchor, mut map, merges, .. }) = self.stack.pop() {
                    // Keys of the mapping itself win; among merged maps, the first wins.
                    for merged in merges {
                        match merged {
                            Node::Map(m) => {
                                for (k, v) in m {
                                    map.entry(k).or_insert(v);
                                }
                            }
                            _ => {
                                self.error = Some("map merge requires map or sequence of maps as the value".into());
                                return;
                            }
                        }
                    }
                    self.push_value(Node::Map(map), anchor, size);
                }
            }
            Event::Alias(id) => {
                let Some((size, bytes)) = self.anchors.get(&id).map(|(_, size, bytes)| (*size, *bytes)) else {
                    self.error = Some(format!("unknown anchor {id}"));
                    return;
                };
                // Counted before anything is copied: an alias bomb stops here, as in yaml.v3
                // (and one that repeats a long string, by its bytes).
                self.decoded = self.decoded.saturating_add(size);
                self.aliased = self.aliased.saturating_add(size);
                self.decoded_bytes = self.decoded_bytes.saturating_add(bytes);
                if self.decoded_bytes > MAX_DECODED_BYTES {
                    self.error = Some(format!(
                        "the document is larger than {} MiB once its aliases are expanded",
                        MAX_DECODED_BYTES >> 20
                    ));
                    return;
                }
                if self.decoded > MAX_NODES
                    || (self.aliased > 100
                        && self.decoded > 1000
                        && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded))
                {
                    self.error = Some("document contains excessive aliasing".into());
                    return;
                }
                if let Some((node, _, _)) = self.anchors.get(&id).cloned() {
                    self.push_value(node, 0, (size, bytes));
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// Parses the first document of `text` (an empty file is `Null`).
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError(format!("the file is longer than {} MiB", MAX_BYTES >> 20)));
    }
    let mut builder = Builder {
        stack: Vec::new(),
        sizes: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        error: None,
        documents: 0,
        decoded: 0,
        aliased: 0,
        decoded_bytes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError(e.to_string()))?;
    if let Some(e) = builder.error {
        return Err(YamlError(e));
    }
    Ok(builder.root.unwrap_or(Node::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_resolve_like_go_yaml_v3() {
        assert_eq!(resolve_plain("0440"), Node::Int(288));
        assert_eq!(resolve_plain("0o440"), Node::Int(288));
        assert_eq!(resolve_plain("0x1F"), Node::Int(31));
        assert_eq!(resolve_plain("1_000"), Node::Int(1000));
        assert_eq!(resolve_plain("-12"), Node::Int(-12));
        assert_eq!(resolve_plain("08"), Node::Float(8.0));
        assert_eq!(resolve_plain("3.8"), Node::Float(3.8));
        assert_eq!(resolve_plain("1e3"), Node::Float(1000.0));
        assert_eq!(resolve_plain("yes"), Node::Str("yes".into()));
        assert_eq!(resolve_plain("True"), Node::Bool(true));
        assert_eq!(resolve_plain("~"), Node::Null);
        assert_eq!(resolve_plain("1.2.3"), Node::Str("1.2.3".into()));
        assert_eq!(resolve_plain("-"), Node::Str("-".into()));
        assert_eq!(resolve_plain("10s"), Node::Str("10s".into()));
    }

    #[test]
    fn documents_with_anchors_and_merges() {
        let doc = parse(
            "version: \"3.8\"\nx-base: &base\n  image: a:1\n  environment: {A: 1}\nservices:\n  web:\n    <<: *base\n    image: b:2\n    mode: 0440\n    quoted: '0440'\n",
        )
        .unwrap();
        assert_eq!(doc.at(&["version"]), Some(&Node::Str("3.8".into())));
        let web = doc.at(&["services", "web"]).unwrap();
        assert_eq!(web.get("image"), Some(&Node::Str("b:2".into())), "explicit keys win over merged ones");
        assert_eq!(web.at(&["environment", "A"]), Some(&Node::Int(1)));
        assert_eq!(web.get("mode"), Some(&Node::Int(0o440)));
        assert_eq!(web.get("quoted"), Some(&Node::Str("0440".into())));
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        // Nine levels of ten aliases each: a billion nodes if expanded.
        let mut doc = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            doc.push_str(&format!(
                "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = n;
        }
        assert_eq!(parse(&doc).unwrap_err().0, "document contains excessive aliasing");
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = parse(&deep).unwrap_err().0;
        assert!(e.contains("deeper than") || e.contains("recursion limit"), "{e}");
        let deep_maps: String =
            (0..200).map(|i| format!("{}a:\n", "  ".repeat(i))).collect::<String>() + &"  ".repeat(200) + "1\n";
        let e = parse(&deep_maps).unwrap_err().0;
        assert!(e.contains("deeper than") || e.contains("recursion limit"), "{e}");
        // A long string repeated by aliases is counted by its bytes.
        let long = format!(
            "a: &a \"{}\"\nb: [{}]\nfill: [{}]\n",
            "x".repeat(1 << 20),
            vec!["*a"; 100].join(","),
            vec!["1"; 2000].join(",")
        );
        assert!(parse(&long).unwrap_err().0.contains("once its aliases are expanded"));
        // Ordinary anchors and merges are fine.
        let ok = "x: &base {a: 1}\ny: {<<: *base, b: 2}\nz: [*base, *base]\n";
        assert!(parse(ok).is_ok());
    }

    #[test]
    fn errors() {
        assert!(parse("a: [1, 2\n").is_err());
        assert!(parse("a:\n  1: x\n").unwrap_err().0.contains("Non-string key"));
        assert!(parse("a: 1\na: 2\n").unwrap_err().0.contains("already defined"));
        assert_eq!(parse("").unwrap(), Node::Null);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(3.8), "3.8");
        assert_eq!(go_float(1000.0), "1000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.5), "0.5");
    }
}
