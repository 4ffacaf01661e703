//! The one module that writes and reads YAML, so the YAML library can be swapped here alone.
//!
//! Writing is our own small emitter over `serde_json::Value`: it reproduces what `mkectl`
//! (Go, `sigs.k8s.io/yaml` over yaml.v2) prints — keys sorted the way yaml.v2 sorts them,
//! `hosts` last under `spec`, sequences not indented under their key, strings quoted with `"`
//! only when YAML would read them as something else, multi-line strings as `|-` blocks — so
//! that the output can be compared with real `mkectl init` files line by line and is stable
//! whatever order the model builds maps in. Reading goes through `serde_yaml`.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

/// Serialises `value` as an MKE 4k YAML document.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    let mut out = String::with_capacity(4096);
    emit_value(&v, 0, &mut out, Parent::Root);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Parses YAML into `T`.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_yaml::Error> {
    serde_yaml::from_str(text)
}

#[derive(Clone, Copy, PartialEq)]
enum Parent<'a> {
    Root,
    Key(&'a str),
    Seq,
}

fn emit_value(v: &Value, indent: usize, out: &mut String, parent: Parent<'_>) {
    match v {
        Value::Object(map) if !map.is_empty() => emit_map(map, indent, out, parent),
        Value::Array(items) if !items.is_empty() => emit_seq(items, indent, out),
        scalar => {
            // A root-level scalar.
            out.push_str(&scalar_text(scalar, indent));
            out.push('\n');
        }
    }
}

fn sorted_keys<'a>(map: &'a serde_json::Map<String, Value>, parent: Parent<'_>) -> Vec<&'a String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| go_key_cmp(a, b));
    // mkectl writes `hosts` after every other key of `spec`.
    if parent == Parent::Key("spec") {
        if let Some(pos) = keys.iter().position(|k| k.as_str() == "hosts") {
            let hosts = keys.remove(pos);
            keys.push(hosts);
        }
    }
    keys
}

/// A map whose first line is written by the caller (after `- ` in a sequence) or on its own.
fn emit_map(
    map: &serde_json::Map<String, Value>,
    indent: usize,
    out: &mut String,
    parent: Parent<'_>,
) {
    let pad = " ".repeat(indent);
    for (i, key) in sorted_keys(map, parent).into_iter().enumerate() {
        if !(i == 0 && parent == Parent::Seq) {
            out.push_str(&pad);
        }
        out.push_str(&key_text(key));
        out.push(':');
        let Some(v) = map.get(key) else { continue };
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                emit_map(m, indent + 2, out, Parent::Key(key));
            }
            // Go style: a sequence under a key is not indented.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                emit_seq(items, indent, out);
            }
            Value::String(s) if is_block(s) => {
                out.push(' ');
                block_text(s, indent + 2, out);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar, indent));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        out.push_str(&pad);
        out.push('-');
        if let Value::Array(inner) = item {
            if !inner.is_empty() {
                // Nested sequences start on a new line at the next indentation.
                out.push('\n');
                emit_seq(inner, indent + 2, out);
                continue;
            }
        }
        out.push(' ');
        match item {
            Value::Object(m) if !m.is_empty() => emit_map(m, indent + 2, out, Parent::Seq),
            Value::String(s) if is_block(s) => block_text(s, indent + 2, out),
            scalar => {
                out.push_str(&scalar_text(scalar, indent));
                out.push('\n');
            }
        }
    }
}

fn scalar_text(v: &Value, _indent: usize) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                float_text(f)
            } else {
                n.to_string()
            }
        }
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        }
    } else {
        // Keep a decimal point so that the value reads back as a float.
        let s = format!("{f:?}");
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn key_text(k: &str) -> String {
    string_text(k)
}

/// Multi-line strings that a literal block can hold exactly.
fn is_block(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{feff}')
        && !s.lines().any(|l| l.ends_with(' '))
}

/// Writes `|-`, `|` or `|+` and the lines, indented by `indent`.
fn block_text(s: &str, indent: usize, out: &mut String) {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let indicator = match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    out.push_str(indicator);
    out.push('\n');
    let pad = " ".repeat(indent);
    let body = if trailing == 1 {
        &s[..s.len() - 1]
    } else {
        s.trim_end_matches('\n')
    };
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    if trailing > 1 {
        for _ in 1..trailing {
            out.push('\n');
        }
    }
}

/// A plain scalar when YAML reads it back as the same string, else a double-quoted one.
fn string_text(s: &str) -> String {
    if needs_quotes(s) {
        quote(s)
    } else {
        s.to_string()
    }
}

fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return true;
    }
    if "!&*{}[],#|>@`\"'%".contains(first) {
        return true;
    }
    if matches!(first, '-' | '?' | ':') {
        let second = s[first.len_utf8()..].chars().next();
        if second.is_none_or(|c| c == ' ') || s == "---" {
            return true;
        }
    }
    if s.contains(": ") || s.contains(" #") || s.contains('\t') {
        return true;
    }
    if s.chars()
        .any(|c| c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}')
    {
        return true;
    }
    resolves_to_non_string(s)
}

/// Whether a plain scalar would be read as null, a boolean, a number or a timestamp by a YAML
/// 1.1 or 1.2 reader (Go's yaml.v2 is 1.1, serde_yaml is 1.2: quote for both).
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
        "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<", "=",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let Some(c) = t.chars().next() else {
        return false;
    };
    if !(c.is_ascii_digit() || c == '.') {
        return false;
    }
    // Numbers in any YAML 1.1 / 1.2 form: decimal with `_`, 0x, 0o, 0b, sexagesimal, floats.
    let plain = t.replace('_', "");
    if plain.parse::<f64>().is_ok() {
        return true;
    }
    let lower = plain.to_ascii_lowercase();
    let radix_digits = |p: &str, r: u32| {
        lower
            .strip_prefix(p)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(r)))
    };
    if radix_digits("0x", 16) || radix_digits("0o", 8) || radix_digits("0b", 2) {
        return true;
    }
    if is_sexagesimal(t) {
        return true;
    }
    // Timestamps (yyyy-mm-dd...).
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// YAML 1.1 base-60 numbers: `[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?` (`1:30`, `190:20:30.15`).
fn is_sexagesimal(t: &str) -> bool {
    let mut parts = t.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !digits(head) || !head.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return false;
    }
    rest.iter().enumerate().all(|(i, p)| {
        let (whole, frac) = match p.split_once('.') {
            Some((w, f)) if i == rest.len() - 1 => (w, Some(f)),
            Some(_) => return false,
            None => (*p, None),
        };
        let base60 = match whole.as_bytes() {
            [a] => a.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        };
        base60 && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'))
    })
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The key order of Go's yaml.v2 (`keyList.Less`): letters by code point, non-letters before
/// letters, runs of digits compared as numbers.
pub fn go_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0u128, 0u128);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(u128::from(ar[ai] as u32 - '0' as u32));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(u128::from(br[bi] as u32 - '0' as u32));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_only_what_yaml_would_misread() {
        for s in [
            "",
            "true",
            "no",
            "5",
            "1e3",
            "0x1F",
            "- a",
            "a: b",
            " x",
            "null",
            "2024-01-01",
            "1:30",
        ] {
            assert!(needs_quotes(s), "{s:?} must be quoted");
        }
        for s in [
            "1m0s",
            "0s",
            "2GB",
            "10.96.0.0/16",
            "--profile=high",
            "cpu=200m",
            "/high",
            "mke/mke-ingress.tls",
            "0.0.0.0:10249",
            "oci://registry.mirantis.com/mke",
            "v4.1.0",
            "0.0.0.0:10249",
            "10.0.0.1:443",
        ] {
            assert!(!needs_quotes(s), "{s:?} must stay plain");
        }
    }

    #[test]
    fn every_string_reads_back_as_itself() {
        for s in [
            "",
            "true",
            "a\"b",
            "tab\there",
            "multi\nline",
            "multi\nline\n",
            "x\n\n",
            " lead\nx",
            "#c",
            "é",
            "\u{7}",
        ] {
            let doc = to_string(&json!({ "k": s })).unwrap();
            let back: serde_json::Value = from_str(&doc).unwrap();
            assert_eq!(back["k"], json!(s), "{doc}");
        }
    }

    #[test]
    fn go_key_order() {
        let mut keys = vec![
            "maxPods",
            "managerKubeReserved",
            "eventRecordQPS",
            "extraArgs",
            "a10",
            "a9",
            "a-b",
            "ab",
        ];
        keys.sort_by(|a, b| go_key_cmp(a, b));
        assert_eq!(
            keys,
            [
                "a-b",
                "a9",
                "a10",
                "ab",
                "eventRecordQPS",
                "extraArgs",
                "managerKubeReserved",
                "maxPods"
            ]
        );
    }

    #[test]
    fn layout_matches_go() {
        let doc = to_string(&json!({"spec": {"hosts": [{"role": "worker", "ssh": {"port": 22}}], "b": [], "a": {}, "c": ["x", ["z"]]}})).unwrap();
        assert_eq!(
            doc,
            "spec:\n  a: {}\n  b: []\n  c:\n  - x\n  -\n    - z\n  hosts:\n  - role: worker\n    ssh:\n      port: 22\n"
        );
    }
}
