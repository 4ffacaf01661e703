//! Parsing an MKE 3 config-toml: syntax, a type check of every schema key with its line and
//! column, the list of every key in the file (known or not), and the typed model.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::Mke3Config;
use super::schema::{self, KeyDef, Kind};
use crate::error::ParseError;

/// One key of the source file: a schema key, a whole [`Kind::Map`] / [`Kind::Tables`]
/// setting, or an unknown key.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The path as written in the file (so `clientID` stays `clientID`).
    pub segments: Vec<String>,
    /// The schema definition; `None` for an unknown key.
    pub def: Option<&'static KeyDef>,
    /// The value as written.
    pub value: toml::Value,
    /// 1-based line and column of the key.
    pub line: usize,
    pub column: usize,
    /// An empty table the schema knows (`[etcd_cleanup_schedule_config]` with no keys): it sets
    /// nothing, and is reported so that no line of the file goes unmentioned.
    pub empty_table: bool,
}

impl Entry {
    /// The dotted path as written in the file.
    pub fn source_path(&self) -> String {
        self.segments.join(".")
    }

    /// The canonical schema path, or the source path for an unknown key.
    pub fn path(&self) -> String {
        match self.def {
            Some(def) => def.path.to_string(),
            None => self.source_path(),
        }
    }
}

/// A parsed source file.
#[derive(Debug, Clone)]
pub struct Source {
    pub config: Mke3Config,
    /// Every key of the file, in file order within each table.
    pub entries: Vec<Entry>,
}

impl Source {
    /// The entry of a canonical schema path, if the file sets it.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.def.is_some_and(|d| d.path == path))
    }

    /// The boolean value of a schema key; `false` when absent.
    pub fn flag(&self, path: &str) -> bool {
        self.get(path)
            .and_then(|e| e.value.as_bool())
            .unwrap_or(false)
    }
}

/// Byte offset -> 1-based line and column (in characters).
pub(crate) struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// The key a syntax error is in: the key on the error's line, or the table header above it.
    fn key_near(&self, offset: usize) -> Option<String> {
        let (line, _) = self.position(offset);
        let mut table = String::new();
        for l in self
            .text
            .lines()
            .take(line.saturating_sub(1))
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            let t = l.trim();
            if let Some(h) = t.strip_prefix('[') {
                table = h
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                break;
            }
        }
        let current = self.text.lines().nth(line - 1).unwrap_or("").trim();
        if current.starts_with('[') {
            return Some(
                current
                    .trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_string(),
            );
        }
        let key = current.split('=').next().map(str::trim).filter(|k| {
            !k.is_empty()
                && current.contains('=')
                && k.chars()
                    .all(|c| c.is_alphanumeric() || "_-.\"".contains(c))
        });
        match (key, table.is_empty()) {
            (Some(k), true) => Some(k.to_string()),
            (Some(k), false) => Some(format!("{table}.{k}")),
            (None, false) => Some(table),
            (None, true) => None,
        }
    }
}

/// Parses `text`. Every error names the line, the column and the key.
pub fn parse(text: &str) -> Result<Source, ParseError> {
    let lines = Lines::new(text);
    let root = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = lines.position(offset);
        ParseError {
            line,
            column,
            key: lines.key_near(offset),
            message: e.message().trim().to_string(),
        }
    })?;
    let mut walker = Walker {
        lines: &lines,
        entries: Vec::new(),
        spans: Vec::new(),
    };
    walker.table(root.get_ref(), &mut Vec::new(), Some(String::new()))?;
    let Walker { entries, spans, .. } = walker;

    // The typed model catches shape errors inside whole-table settings (a MetalLB pool whose
    // name is a number). The walk has already checked every schema key's own type.
    let config: Mke3Config = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = lines.position(offset);
        // The key is the innermost recorded value that contains the error, else the last key
        // that starts before it.
        let key = spans
            .iter()
            .filter(|(r, _)| r.start <= offset && offset < r.end.max(r.start + 1))
            .min_by_key(|(r, _)| r.end - r.start)
            .or_else(|| {
                spans
                    .iter()
                    .filter(|(r, _)| r.start <= offset)
                    .max_by_key(|(r, _)| r.start)
            })
            .map(|(_, k)| k.clone());
        ParseError {
            line,
            column,
            key,
            message: e.message().trim().to_string(),
        }
    })?;
    Ok(Source { config, entries })
}

struct Walker<'a, 'l> {
    lines: &'a Lines<'l>,
    entries: Vec<Entry>,
    spans: Vec<(std::ops::Range<usize>, String)>,
}

impl Walker<'_, '_> {
    /// Walks a table. `canonical` is the schema path of the table when the schema knows it.
    fn table(
        &mut self,
        table: &DeTable<'_>,
        segments: &mut Vec<String>,
        canonical: Option<String>,
    ) -> Result<(), ParseError> {
        let mut seen_defs: Vec<(&'static str, String)> = Vec::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            segments.push(name.clone());
            let (line, column) = self.lines.position(key.span().start);
            let source_path = segments.join(".");
            self.spans.push((value.span(), source_path.clone()));
            self.spans.push((key.span(), source_path.clone()));

            let def = canonical
                .as_deref()
                .and_then(|table_path| schema::lookup(table_path, &name));
            if let Some(def) = def {
                if let Some((_, other)) = seen_defs.iter().find(|(p, _)| *p == def.path) {
                    return Err(ParseError {
                        line,
                        column,
                        key: Some(source_path),
                        message: format!(
                            "the same setting is given twice, as `{other}` and as `{name}`"
                        ),
                    });
                }
                seen_defs.push((def.path, name.clone()));
                let converted = to_value(value, self.lines, &source_path)?;
                check_kind(def, &converted).map_err(|message| {
                    let (line, column) = self.lines.position(value.span().start);
                    ParseError {
                        line,
                        column,
                        key: Some(source_path.clone()),
                        message,
                    }
                })?;
                self.entries.push(Entry {
                    segments: segments.clone(),
                    def: Some(def),
                    value: converted,
                    line,
                    column,
                    empty_table: false,
                });
            } else {
                let child = canonical.as_deref().map(|c| {
                    if c.is_empty() {
                        name.clone()
                    } else {
                        format!("{c}.{name}")
                    }
                });
                let known_child = child.as_deref().filter(|c| schema::is_table(c));
                match value.get_ref() {
                    DeValue::Table(t) if known_child.is_some() && t.is_empty() => {
                        self.entries.push(Entry {
                            segments: segments.clone(),
                            def: None,
                            value: toml::Value::Table(toml::Table::new()),
                            line,
                            column,
                            empty_table: true,
                        });
                    }
                    DeValue::Table(t) if known_child.is_some() => {
                        self.table(t, segments, known_child.map(str::to_string))?;
                    }
                    DeValue::Table(t) if !t.is_empty() => {
                        // An unknown table: report each of its keys, so nothing hides inside.
                        self.table(t, segments, None)?;
                    }
                    _ => {
                        let converted = to_value(value, self.lines, &source_path)?;
                        self.entries.push(Entry {
                            segments: segments.clone(),
                            def: None,
                            value: converted,
                            line,
                            column,
                            empty_table: false,
                        });
                    }
                }
            }
            segments.pop();
        }
        Ok(())
    }
}

/// Checks a value against the schema type; the message says what was expected and found.
fn check_kind(def: &KeyDef, v: &toml::Value) -> Result<(), String> {
    let ok = match def.kind {
        Kind::Bool => v.is_bool(),
        Kind::Int => match v {
            toml::Value::Integer(_) => true,
            toml::Value::String(s) => super::de::parse_int_str(s).is_ok(),
            _ => false,
        },
        Kind::Str | Kind::Duration => v.is_str(),
        Kind::StrList => v
            .as_array()
            .is_some_and(|a| a.iter().all(toml::Value::is_str)),
        Kind::Map => v.is_table(),
        Kind::Tables => match v {
            toml::Value::Array(a) => a.iter().all(toml::Value::is_table),
            toml::Value::Table(_) => true,
            _ => false,
        },
    };
    if ok {
        return Ok(());
    }
    let expected = match def.kind {
        Kind::Bool => "a boolean (true or false)",
        Kind::Int => "an integer or a string of digits",
        Kind::Str => "a string",
        Kind::Duration => "a duration string such as \"1m0s\"",
        Kind::StrList => "an array of strings",
        Kind::Map => "a table",
        Kind::Tables => "an array of tables",
    };
    Err(format!("expected {expected}, found {}", describe(v)))
}

pub(crate) fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer {i}"),
        toml::Value::Float(f) => format!("float {f}"),
        toml::Value::Boolean(b) => format!("boolean {b}"),
        toml::Value::Datetime(d) => format!("datetime {d}"),
        toml::Value::Array(a) if a.iter().any(|x| !x.is_str()) => {
            "an array with a non-string item".to_string()
        }
        toml::Value::Array(_) => "an array".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

fn to_value(
    v: &Spanned<DeValue<'_>>,
    lines: &Lines<'_>,
    key: &str,
) -> Result<toml::Value, ParseError> {
    let fail = |message: String| {
        let (line, column) = lines.position(v.span().start);
        ParseError {
            line,
            column,
            key: Some(key.to_string()),
            message,
        }
    };
    Ok(match v.get_ref() {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let n = i64::from_str_radix(&digits, i.radix())
                .map_err(|_| fail(format!("integer {i} is out of range")))?;
            toml::Value::Integer(n)
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            let n = match text.trim_start_matches('+') {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                t => t
                    .parse::<f64>()
                    .map_err(|_| fail(format!("invalid float {f}")))?,
            };
            toml::Value::Float(n)
        }
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(a) => toml::Value::Array(
            a.iter()
                .map(|x| to_value(x, lines, key))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(t) => {
            let mut out = toml::Table::new();
            for (k, x) in t.iter() {
                out.insert(k.get_ref().to_string(), to_value(x, lines, key)?);
            }
            toml::Value::Table(out)
        }
    })
}
