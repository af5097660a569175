//! Shard sets: which tars make one dataset, in webdataset's order.
//!
//! - A spec is expanded as webdataset's `expand_urls` does: split on `::`, substitute
//!   `${NAME}` with the environment variable `WDS_NAME`, then `braceexpand` (a port of
//!   braceexpand 0.1.7: `{a,b}` lists, `{000..099}` zero-padded and `{a..e}` ranges with an
//!   optional `..step`, nesting, `\` escapes, unbalanced braces refused).
//! - A directory holding `train-000000.tar … train-000009.tar` (a common prefix, then
//!   digits) is one set named `train`, ordered by number; `val.tar` beside it is a set
//!   `val` of one shard ([`discover`]).
//!
//! Only local paths: `pipe:`, `http://` and other URLs webdataset opens are refused.

use std::path::{Path, PathBuf};

/// More shards than this in one spec is a typo (`{0..999999999}`), not a dataset.
pub const MAX_SHARDS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardSpecError {
    #[error("unbalanced braces in {0:?}")]
    Unbalanced(String),
    #[error("{0:?} expands to more than {MAX_SHARDS} shards")]
    TooMany(String),
    #[error("{spec:?} uses ${{{name}}} but WDS_{name} is not set")]
    MissingVariable { spec: String, name: String },
    #[error("{0:?} is not a local path (remote and pipe: shards are not supported)")]
    NotLocal(String),
    #[error("empty shard spec")]
    Empty,
    #[error("cannot list {0}: {1}")]
    Directory(String, String),
}

/// A named, ordered list of shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSet {
    pub name: String,
    pub shards: Vec<PathBuf>,
}

/// The shard sets a spec names: a directory gives its [`discover`]ed sets, anything else
/// one set ([`from_spec`]).
pub fn resolve(spec: &str) -> Result<Vec<ShardSet>, ShardSpecError> {
    let path = Path::new(spec.strip_prefix("file:").unwrap_or(spec));
    if !spec.contains("::") && !spec.contains('{') && path.is_dir() {
        return discover(path).map_err(|e| ShardSpecError::Directory(spec.to_owned(), e.to_string()));
    }
    Ok(vec![from_spec(spec)?])
}

/// A shard set from a spec: `dir/train-{000000..000099}.tar`, `a.tar::b.tar`, ….
pub fn from_spec(spec: &str) -> Result<ShardSet, ShardSpecError> {
    let urls = expand_urls(spec, |name| std::env::var(name).ok())?;
    if urls.is_empty() {
        return Err(ShardSpecError::Empty);
    }
    let mut shards = Vec::with_capacity(urls.len());
    for url in urls {
        let path = url.strip_prefix("file:").unwrap_or(&url);
        if path.starts_with("pipe:") || path.contains("://") {
            return Err(ShardSpecError::NotLocal(url.clone()));
        }
        shards.push(PathBuf::from(path));
    }
    Ok(ShardSet {
        name: set_name(spec, &shards),
        shards,
    })
}

/// The name of a set: the first pattern's file name up to its first brace, without
/// `.tar` and trailing `-`, `_`, `.`; else the first shard's stem.
fn set_name(spec: &str, shards: &[PathBuf]) -> String {
    let first = spec.split("::").next().unwrap_or(spec);
    let file = first.rsplit('/').next().unwrap_or(first);
    let head = file.split('{').next().unwrap_or(file);
    let head = head.strip_suffix(".tar").unwrap_or(head);
    let name = head.trim_end_matches(['-', '_', '.']);
    if !name.is_empty() {
        return name.to_owned();
    }
    shards
        .first()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "shards".to_owned())
}

/// webdataset's `expand_urls`, with `env` looking variables up (by their full name).
pub fn expand_urls(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ShardSpecError> {
    let mut out = Vec::new();
    for part in spec.split("::") {
        let mut url = part.to_owned();
        for _ in 0..10 {
            let next = envsubst(&url, spec, &env)?;
            if next == url {
                break;
            }
            url = next;
        }
        out.extend(braceexpand(&url)?);
        if out.len() > MAX_SHARDS {
            return Err(ShardSpecError::TooMany(spec.to_owned()));
        }
    }
    Ok(out)
}

/// `re.sub(r"\$\{(\w+)\}", …)`: `${NAME}` → `WDS_NAME` from the environment.
fn envsubst(s: &str, spec: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, ShardSpecError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let word = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if word > 0 && after[word..].starts_with('}') {
            let name = &after[..word];
            let value = env(&format!("WDS_{name}")).ok_or_else(|| ShardSpecError::MissingVariable {
                spec: spec.to_owned(),
                name: name.to_owned(),
            })?;
            out.push_str(&rest[..i]);
            out.push_str(&value);
            rest = &after[word + 1..];
        } else {
            out.push_str(&rest[..i + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Every expansion of `pattern`, in braceexpand's order (the leftmost brace varies
/// slowest).
pub fn braceexpand(pattern: &str) -> Result<Vec<String>, ShardSpecError> {
    let chars: Vec<char> = pattern.chars().collect();
    let raw = Expander { source: pattern }.pattern(&chars)?;
    Ok(raw.iter().map(|s| unescape(s)).collect())
}

struct Expander<'a> {
    source: &'a str,
}

impl Expander<'_> {
    fn too_many(&self) -> ShardSpecError {
        ShardSpecError::TooMany(self.source.to_owned())
    }

    /// `parse_pattern`: literal runs and brace groups, multiplied out.
    fn pattern(&self, p: &[char]) -> Result<Vec<String>, ShardSpecError> {
        let (mut start, mut pos, mut depth) = (0usize, 0usize, 0i64);
        let mut items: Vec<Vec<String>> = Vec::new();
        while pos < p.len() {
            match p[pos] {
                '\\' => {
                    pos += 2;
                    continue;
                }
                '{' => {
                    if depth == 0 && pos > start {
                        items.push(vec![p[start..pos].iter().collect()]);
                        start = pos;
                    }
                    depth += 1;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let expr = &p[start + 1..pos];
                        match self.expression(expr)? {
                            Some(item) => items.push(item),
                            None => {
                                items.push(vec!["{".to_owned()]);
                                items.push(self.pattern(expr)?);
                                items.push(vec!["}".to_owned()]);
                            }
                        }
                        start = pos + 1;
                    }
                }
                _ => {}
            }
            pos += 1;
        }
        if depth != 0 {
            return Err(ShardSpecError::Unbalanced(self.source.to_owned()));
        }
        if start < p.len() {
            items.push(vec![p[start..].iter().collect()]);
        }
        let mut out = vec![String::new()];
        for item in items {
            if out.len().saturating_mul(item.len()) > MAX_SHARDS {
                return Err(self.too_many());
            }
            out = out
                .iter()
                .flat_map(|head| item.iter().map(move |tail| format!("{head}{tail}")))
                .collect();
        }
        Ok(out)
    }

    /// `parse_expression`: an integer range, a letter range, or a comma sequence.
    fn expression(&self, expr: &[char]) -> Result<Option<Vec<String>>, ShardSpecError> {
        let text: String = expr.iter().collect();
        if let Some(range) = self.int_range(&text)? {
            return Ok(Some(range));
        }
        if let Some(range) = char_range(&text) {
            return Ok(Some(range));
        }
        self.sequence(expr)
    }

    /// `parse_sequence`: top-level commas split alternatives; none means "not a sequence".
    fn sequence(&self, seq: &[char]) -> Result<Option<Vec<String>>, ShardSpecError> {
        let (mut start, mut pos, mut depth) = (0usize, 0usize, 0i64);
        let mut parts: Vec<&[char]> = Vec::new();
        while pos < seq.len() {
            match seq[pos] {
                '\\' => {
                    pos += 2;
                    continue;
                }
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&seq[start..pos]);
                    start = pos + 1;
                }
                _ => {}
            }
            pos += 1;
        }
        if depth != 0 || parts.is_empty() {
            return Ok(None);
        }
        parts.push(&seq[start.min(seq.len())..]);
        let mut out = Vec::new();
        for part in parts {
            out.extend(self.pattern(part)?);
            if out.len() > MAX_SHARDS {
                return Err(self.too_many());
            }
        }
        Ok(Some(out))
    }

    /// `^(-?\d+)\.\.(-?\d+)(?:\.\.-?(\d+))?$`, zero-padded when an end has a leading 0.
    fn int_range(&self, text: &str) -> Result<Option<Vec<String>>, ShardSpecError> {
        let fields: Vec<&str> = text.split("..").collect();
        let is_int = |s: &str| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        };
        let step = match fields.as_slice() {
            [a, b] if is_int(a) && is_int(b) => None,
            [a, b, c] if is_int(a) && is_int(b) && is_int(c) => Some(c.trim_start_matches('-')),
            _ => return Ok(None),
        };
        let (left, right) = (fields[0], fields[1]);
        let padded = [left, right]
            .iter()
            .any(|s| *s != "0" && *s != "-0" && (s.starts_with('0') || s.starts_with("-0")));
        let width = if padded { left.len().max(right.len()) } else { 0 };
        let parse = |s: &str| s.parse::<i128>().map_err(|_| self.too_many());
        let (first, last) = (parse(left)?, parse(right)?);
        let step = match step {
            Some(s) => parse(s)?.max(0),
            None => 1,
        };
        let step = if step == 0 { 1 } else { step };
        let count = (first - last).abs() / step + 1;
        if count > MAX_SHARDS as i128 {
            return Err(self.too_many());
        }
        let sign = if first <= last { 1 } else { -1 };
        Ok(Some(
            (0..count)
                .map(|k| format!("{:0width$}", first + sign * k * step))
                .collect(),
        ))
    }
}

/// `^([A-Za-z])\.\.([A-Za-z])(?:\.\.-?(\d+))?$` over the alphabet `A–Z a–z`.
fn char_range(text: &str) -> Option<Vec<String>> {
    const ALPHABET: &[u8; 52] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let fields: Vec<&str> = text.split("..").collect();
    let index = |s: &str| match s.as_bytes() {
        [c] => ALPHABET.iter().position(|a| a == c),
        _ => None,
    };
    let (first, last) = (index(fields.first()?)?, index(fields.get(1)?)?);
    let step = match fields.get(2) {
        None if fields.len() == 2 => 1,
        Some(s) if fields.len() == 3 => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<usize>().unwrap_or(usize::MAX).max(1)
        }
        _ => return None,
    };
    let picked: Vec<usize> = if first < last {
        (first..=last).step_by(step).collect()
    } else {
        (last..=first).rev().step_by(step).collect()
    };
    Some(
        picked
            .into_iter()
            .map(|i| char::from(ALPHABET[i]).to_string())
            .collect(),
    )
}

/// braceexpand's final `re.sub(r'\\(.)', r'\1', s)`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next)) if next != '\n' => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// The shard sets of a directory (see [`group_numbered`]).
pub fn discover(dir: &Path) -> std::io::Result<Vec<ShardSet>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    Ok(group_numbered(&files))
}

/// Groups files into shard sets: `<prefix><digits>.tar` files sharing a prefix form one
/// set (named by the prefix without a trailing `-`, `_` or `.`), ordered by number; any
/// other `<stem>.tar` is a set of its own; other files are ignored. Sets are sorted by name.
pub fn group_numbered(files: &[PathBuf]) -> Vec<ShardSet> {
    let mut found: Vec<(String, u128, String, PathBuf)> = Vec::new();
    for path in files {
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tar"))
        else {
            continue;
        };
        if stem.is_empty() {
            continue;
        }
        let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, number) = if digits > 0 {
            let (prefix, number) = stem.split_at(stem.len() - digits);
            (format!("{prefix}#"), number.parse::<u128>().unwrap_or(u128::MAX))
        } else {
            (stem.to_owned(), 0)
        };
        found.push((prefix, number, stem.to_owned(), path.clone()));
    }
    found.sort();
    let mut sets: Vec<(String, ShardSet)> = Vec::new();
    for (prefix, _, _, path) in found {
        match sets.last_mut() {
            Some((last, set)) if *last == prefix => set.shards.push(path),
            _ => {
                let shown = prefix.strip_suffix('#').unwrap_or(&prefix);
                let trimmed = shown.trim_end_matches(['-', '_', '.']);
                let name = if trimmed.is_empty() { "shards" } else { trimmed };
                sets.push((
                    prefix.clone(),
                    ShardSet {
                        name: name.to_owned(),
                        shards: vec![path],
                    },
                ));
            }
        }
    }
    let mut sets: Vec<ShardSet> = sets.into_iter().map(|(_, set)| set).collect();
    make_unique(&mut sets);
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    sets
}

/// `train-0.tar` and `train_0.tar` both want the name `train`: later ones get `train~2`, ….
fn make_unique(sets: &mut [ShardSet]) {
    let mut seen = std::collections::HashSet::new();
    for set in sets.iter_mut() {
        let base = set.name.clone();
        let mut n = 1;
        while !seen.insert(set.name.clone()) {
            n += 1;
            set.name = format!("{base}~{n}");
        }
    }
}
