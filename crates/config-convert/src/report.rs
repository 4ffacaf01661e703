//! The compatibility reports (`conversion-rules.md` section 9) and the "Configuration file"
//! part of the Upgrade Summary (sections 10.2 to 10.5).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::convert::{Conversion, FlagOutcome, KeyReport, Status};
use crate::mke3::schema::Kind;

const BANNER: &str = "MKE3->MKE4 Compatibility Checks";
const DASHES: &str = "---------------";

fn boxed(title: &str) -> String {
    let line = "#".repeat(title.len() + 4);
    format!("{line}\n# {title} #\n{line}\n")
}

fn groups(c: &Conversion) -> Vec<(Status, Vec<&KeyReport>)> {
    let mut out = Vec::new();
    for status in [
        Status::NotSupported,
        Status::Converted,
        Status::Skipped,
        Status::Unknown,
    ] {
        let keys: Vec<&KeyReport> = c.keys.iter().filter(|k| k.status == status).collect();
        // ferry's Unknown group is printed only when there is something in it.
        if status != Status::Unknown || !keys.is_empty() {
            out.push((status, keys));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sorted TOML report (9.2)

#[derive(Default)]
struct Node {
    keys: BTreeMap<String, toml::Value>,
    tables: BTreeMap<String, Node>,
    arrays: BTreeMap<String, Vec<toml::Table>>,
}

impl Node {
    fn insert(&mut self, segments: &[String], value: &toml::Value, kind: Option<Kind>) {
        let Some((last, parents)) = segments.split_last() else {
            return;
        };
        let mut node = self;
        for p in parents {
            node = node.tables.entry(p.clone()).or_default();
        }
        match (value, kind) {
            (toml::Value::Table(t), _) => {
                let child = node.tables.entry(last.clone()).or_default();
                child.merge_table(t);
            }
            (toml::Value::Array(a), Some(Kind::Tables))
                if a.iter().all(toml::Value::is_table) && !a.is_empty() =>
            {
                let tables = a.iter().filter_map(|x| x.as_table().cloned()).collect();
                node.arrays.insert(last.clone(), tables);
            }
            _ => {
                node.keys.insert(last.clone(), value.clone());
            }
        }
    }

    fn merge_table(&mut self, t: &toml::Table) {
        for (k, v) in t {
            match v {
                toml::Value::Table(inner) => {
                    self.tables.entry(k.clone()).or_default().merge_table(inner)
                }
                toml::Value::Array(a) if !a.is_empty() && a.iter().all(toml::Value::is_table) => {
                    let tables = a.iter().filter_map(|x| x.as_table().cloned()).collect();
                    self.arrays.insert(k.clone(), tables);
                }
                _ => {
                    self.keys.insert(k.clone(), v.clone());
                }
            }
        }
    }

    fn write(&self, path: &[String], out: &mut String) {
        let depth = path.len();
        let key_pad = "  ".repeat(depth);
        for (k, v) in &self.keys {
            let _ = writeln!(out, "{key_pad}{} = {}", toml_key(k), toml_inline(v));
        }
        for (name, child) in &self.tables {
            let mut p = path.to_vec();
            p.push(name.clone());
            let _ = writeln!(out, "{}[{}]", "  ".repeat(depth), header(&p));
            child.write(&p, out);
        }
        for (name, items) in &self.arrays {
            let mut p = path.to_vec();
            p.push(name.clone());
            for t in items {
                let _ = writeln!(out, "{}[[{}]]", "  ".repeat(depth), header(&p));
                let mut n = Node::default();
                n.merge_table(t);
                n.write(&p, out);
            }
        }
    }
}

fn header(path: &[String]) -> String {
    path.iter()
        .map(|s| toml_key(s))
        .collect::<Vec<_>>()
        .join(".")
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value in TOML inline syntax: basic strings, `["a", "b"]`, `{ k = v }`.
pub fn toml_inline(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => toml_string(s),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_nan() => "nan".into(),
        toml::Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        toml::Value::Float(f) => {
            let s = format!("{f:?}");
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_inline).collect::<Vec<_>>().join(", ")
        ),
        toml::Value::Table(t) if t.is_empty() => "{}".into(),
        toml::Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, x)| format!("{} = {}", toml_key(k), toml_inline(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The source TOML regrouped into Not supported / Supported / Disabled (skipped) / Unknown.
pub fn sorted_toml(c: &Conversion) -> String {
    framed(c, "Disabled (skipped)", |keys, out| {
        let mut root = Node::default();
        for k in keys {
            root.insert(&k.segments, &k.value, k.def.map(|d| d.kind));
        }
        // Root-level keys first: in TOML they cannot follow a table.
        let mut blocks = Vec::new();
        if !root.keys.is_empty() {
            let mut s = String::new();
            for (k, v) in &root.keys {
                let _ = writeln!(s, "{} = {}", toml_key(k), toml_inline(v));
            }
            blocks.push(s);
        }
        for (name, child) in &root.tables {
            let mut s = String::new();
            let p = vec![name.clone()];
            let _ = writeln!(s, "[{}]", header(&p));
            child.write(&p, &mut s);
            blocks.push(s);
        }
        for (name, items) in &root.arrays {
            let mut s = String::new();
            let p = vec![name.clone()];
            for t in items {
                let _ = writeln!(s, "[[{}]]", header(&p));
                let mut n = Node::default();
                n.merge_table(t);
                n.write(&p, &mut s);
            }
            blocks.push(s);
        }
        out.push_str(&blocks.join("\n"));
    })
}

/// The banner, then one box per group (Not supported, Supported, `skipped_title`, and Unknown
/// when there is something in it) followed by the body `write_group` renders for its keys.
fn framed(
    c: &Conversion,
    skipped_title: &str,
    mut write_group: impl FnMut(Vec<&KeyReport>, &mut String),
) -> String {
    let mut out = String::new();
    out.push_str(&boxed(BANNER));
    out.push_str("\n\n");
    for (i, (status, keys)) in groups(c).into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let title = match status {
            Status::NotSupported => "Not supported",
            Status::Converted => "Supported",
            Status::Skipped => skipped_title,
            Status::Unknown => "Unknown",
        };
        out.push_str(&boxed(title));
        out.push('\n');
        write_group(keys, &mut out);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Human-readable report (9.3)

#[derive(Default)]
struct TitleNode {
    titles: Vec<String>,
    children: BTreeMap<String, TitleNode>,
}

impl TitleNode {
    fn write(&self, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let mut titles = self.titles.clone();
        titles.sort_by_key(|t| (t.to_lowercase(), t.clone()));
        titles.dedup();
        for t in titles {
            let _ = writeln!(out, "{pad}{t}");
        }
        for (name, child) in &self.children {
            let _ = writeln!(out, "{pad}{name}");
            child.write(depth + 1, out);
        }
    }
}

/// The tree of setting titles per group.
pub fn human_readable(c: &Conversion) -> String {
    framed(c, "Disabled in MKE3 (Skipped)", |keys, out| {
        let mut root = TitleNode::default();
        for k in keys {
            let Some((last, parents)) = k.segments.split_last() else {
                continue;
            };
            let mut node = &mut root;
            for p in parents {
                node = node.children.entry(p.clone()).or_default();
            }
            let title = match k.def {
                Some(d) => d.display_title(),
                None => last.clone(),
            };
            node.titles.push(title);
        }
        root.write(0, out);
    })
}

// ---------------------------------------------------------------------------------------------
// Upgrade Summary parts

/// The "Configuration file" section, ferry's "Custom flags not converted" block when there is
/// something in it, and the MetalLB block when pools exist.
pub fn configuration_summary(c: &Conversion) -> String {
    let mut out = String::new();
    let not_supported = c.count(Status::NotSupported);
    let unknown = c.count(Status::Unknown);
    let flags: Vec<_> = c.flags_not_converted().collect();
    let _ = writeln!(out, "Configuration file\n{DASHES}");
    if not_supported == 0 && unknown == 0 && flags.is_empty() {
        out.push_str(
            "All MKE 3 TOML settings were successfully converted into MKE 4 YAML settings.\n",
        );
    } else {
        let mut parts = Vec::new();
        if not_supported > 0 {
            parts.push(format!("{not_supported} not supported"));
        }
        if unknown > 0 {
            parts.push(format!("{unknown} unknown"));
        }
        if !flags.is_empty() {
            parts.push(format!("{} custom flags not converted", flags.len()));
        }
        let _ = writeln!(
            out,
            "Some MKE 3 TOML settings could not be converted into MKE 4 YAML settings: {}. See the compatibility check report.",
            parts.join(", ")
        );
    }
    if !flags.is_empty() {
        let _ = writeln!(out, "\nCustom flags not converted\n{DASHES}");
        let mut sorted = flags.clone();
        // Sorted by source key, then in source order (a stable sort keeps it).
        sorted.sort_by(|a, b| a.source.cmp(&b.source));
        for f in sorted {
            let reason = match &f.outcome {
                FlagOutcome::NotConverted { reason } | FlagOutcome::Error { reason } => reason,
                FlagOutcome::Converted { .. } => continue,
            };
            let _ = writeln!(out, "{}: {} ({reason})", f.source, f.item);
        }
    }
    if !c.metallb_pools.is_empty() {
        out.push('\n');
        out.push_str(&metallb_block(c));
    }
    out
}

/// The documented "MetalLB IP address pools" block (10.4).
pub fn metallb_block(c: &Conversion) -> String {
    let mut out = format!("MetalLB IP address pools\n{DASHES}\n");
    for p in &c.metallb_pools {
        let _ = writeln!(
            out,
            "name: {}\nipaddress: [{}]\n",
            p.name,
            p.external_ip.join(" ")
        );
    }
    out.push_str(
        "Please make sure that you create these pools after MKE4 installation is complete.\n",
    );
    out
}

/// Every key that was not converted, one line each: `<key>: <reason>`.
pub fn not_converted(c: &Conversion) -> String {
    let mut out = String::new();
    for k in &c.keys {
        match k.status {
            Status::NotSupported => {
                let _ = writeln!(
                    out,
                    "not supported: {} (line {}): {}",
                    k.key, k.line, k.message
                );
            }
            Status::Unknown => {
                let _ = writeln!(out, "unknown: {} (line {}): {}", k.key, k.line, k.message);
            }
            _ => {}
        }
    }
    out
}
