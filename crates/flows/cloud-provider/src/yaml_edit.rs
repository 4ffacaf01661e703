//! Edits of a YAML file that keep the rest of it as it was, byte for byte: comments, order,
//! quoting, blank lines. For RKE's `cluster.yml`, which operators keep by hand and in git.
//!
//! Only block mappings are walked (`key:` on its own line, its children indented under it);
//! a key whose value is written in flow style (`{…}`, `[…]`), an anchor or alias on the way, or
//! a file that does not parse is refused rather than guessed at. Every edit is checked after the
//! fact: the edited text must parse, and parse to exactly what the same edit does to the parsed
//! original; otherwise the edit is refused and the text left alone.

use serde_yaml::{Mapping, Value};

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("not valid YAML: {0}")]
    Parse(String),
    #[error("{key}: {why}")]
    Unsupported { key: String, why: String },
}

#[derive(Debug, Clone)]
struct Line<'a> {
    text: &'a str,
    indent: usize,
    /// A comment or blank line.
    blank: bool,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|t| {
            let body = t.trim_end_matches(['\n', '\r']);
            let indent = body.len() - body.trim_start_matches(' ').len();
            let rest = body.trim_start();
            Line {
                text: t,
                indent,
                blank: rest.is_empty() || rest.starts_with('#'),
            }
        })
        .collect()
}

/// The key of a `key: …` line (unquoted or simply quoted), and the byte offset of what follows
/// the colon.
fn key_of(line: &str) -> Option<(String, usize)> {
    let body = line.trim_end_matches(['\n', '\r']);
    let start = body.len() - body.trim_start().len();
    let rest = &body[start..];
    if rest.starts_with("- ") || rest == "-" {
        return None;
    }
    let (key, after) = if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"')?;
        (q[..end].to_string(), start + 1 + end + 1)
    } else if let Some(q) = rest.strip_prefix('\'') {
        let end = q.find('\'')?;
        (q[..end].to_string(), start + 1 + end + 1)
    } else {
        let end = rest
            .find(": ")
            .or_else(|| rest.strip_suffix(':').map(|r| r.len()))?;
        (rest[..end].trim_end().to_string(), start + end)
    };
    let tail = &body[after..];
    let tail = tail.strip_prefix(':')?;
    if !(tail.is_empty() || tail.starts_with(' ')) {
        return None;
    }
    Some((key, after + 1))
}

/// The value text after a key's colon, without a trailing comment.
fn value_text(line: &str, after: usize) -> &str {
    let body = line.trim_end_matches(['\n', '\r']);
    let v = &body[after..];
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    v.trim()
}

/// Where a key is: its line, and the end (exclusive) of its block.
struct Found {
    line: usize,
    end: usize,
    after: usize,
}

/// Finds `key` among the children of the block `[from, to)` whose children are indented more
/// than `parent_indent`.
fn find(
    ls: &[Line<'_>],
    from: usize,
    to: usize,
    parent_indent: Option<usize>,
    key: &str,
) -> Option<Found> {
    let child_indent = ls[from..to]
        .iter()
        .find(|l| !l.blank && parent_indent.is_none_or(|p| l.indent > p))
        .map(|l| l.indent)?;
    let mut i = from;
    while i < to {
        let l = &ls[i];
        if !l.blank && l.indent == child_indent {
            if let Some((k, after)) = key_of(l.text) {
                if k == key {
                    let mut end = i + 1;
                    while end < to && (ls[end].blank || ls[end].indent > child_indent) {
                        end += 1;
                    }
                    // trailing comments and blank lines belong to what follows
                    while end > i + 1 && ls[end - 1].blank {
                        end -= 1;
                    }
                    return Some(Found {
                        line: i,
                        end,
                        after,
                    });
                }
            }
        }
        i += 1;
    }
    None
}

fn unsupported(path: &[&str], why: &str) -> EditError {
    EditError::Unsupported {
        key: path.join("."),
        why: why.to_string(),
    }
}

fn parse(text: &str) -> Result<Value, EditError> {
    serde_yaml::from_str(text).map_err(|e| EditError::Parse(e.to_string()))
}

/// What the edit does to parsed YAML: `Some(v)` sets the path to `v` (making the maps on the
/// way), `None` removes it.
fn edit_value(doc: &mut Value, path: &[&str], new: Option<&Value>) -> Result<(), EditError> {
    let mut cur = doc;
    for (i, k) in path.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = cur else {
            return Err(unsupported(&path[..i], "is not a mapping"));
        };
        let key = Value::String((*k).to_string());
        if i + 1 == path.len() {
            match new {
                Some(v) => {
                    m.insert(key, v.clone());
                }
                None => {
                    m.remove(&key);
                }
            }
            return Ok(());
        }
        if !m.contains_key(&key) {
            if new.is_none() {
                return Ok(());
            }
            m.insert(key.clone(), Value::Mapping(Mapping::new()));
        }
        cur = m
            .get_mut(&key)
            .ok_or_else(|| unsupported(path, "vanished"))?;
    }
    Ok(())
}

/// A scalar on one line as people write it: a plain string when it reads back as that string,
/// else double-quoted (`"true"`, `"10"`, `"a: b"`).
fn scalar_text(v: &Value) -> Result<String, EditError> {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
                && !s.starts_with(['-', '.'])
                && serde_yaml::from_str::<Value>(s).ok() == Some(Value::String(s.clone()));
            if plain {
                Ok(s.clone())
            } else {
                // a JSON string is a YAML double-quoted scalar
                serde_json::to_string(s).map_err(|e| EditError::Parse(e.to_string()))
            }
        }
        Value::Bool(_) | Value::Number(_) | Value::Null => {
            let t = serde_yaml::to_string(v).map_err(|e| EditError::Parse(e.to_string()))?;
            Ok(t.trim_end().to_string())
        }
        _ => Err(EditError::Unsupported {
            key: String::new(),
            why: "only scalars are written".into(),
        }),
    }
}

/// `text` with `path` set to the scalar `value`: the key's value replaced where it is (its
/// comment kept), or the key (and the maps on the way) added at the end of its parent.
pub fn set(text: &str, path: &[&str], value: &Value) -> Result<String, EditError> {
    apply(text, path, Some(value))
}

/// `text` without `path` (and its block); the same text when it is not there.
pub fn remove(text: &str, path: &[&str]) -> Result<String, EditError> {
    apply(text, path, None)
}

fn apply(text: &str, path: &[&str], new: Option<&Value>) -> Result<String, EditError> {
    let before = parse(text)?;
    // anchors and aliases change what an edit means; refuse rather than guess
    let anchors = text.lines().any(|l| {
        let t = l.trim_start();
        !t.starts_with('#')
            && (t.contains(": &")
                || t.contains(": *")
                || t.starts_with("<<:")
                || t.starts_with("- &")
                || t.starts_with("- *"))
    });
    if anchors {
        return Err(unsupported(
            path,
            "the file uses YAML anchors or aliases, which ferry does not edit",
        ));
    }
    let out = edit_text(text, path, new)?;
    let mut want = before.clone();
    edit_value(&mut want, path, new)?;
    let got = parse(&out)?;
    if got != want {
        return Err(unsupported(
            path,
            "the edited file would not mean what was intended; edit it by hand",
        ));
    }
    Ok(out)
}

fn edit_text(text: &str, path: &[&str], new: Option<&Value>) -> Result<String, EditError> {
    let ls = lines(text);
    let (mut from, mut to, mut parent): (usize, usize, Option<usize>) = (0, ls.len(), None);
    for (depth, key) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        match find(&ls, from, to, parent, key) {
            Some(f) => {
                let v = value_text(ls[f.line].text, f.after);
                if last {
                    return Ok(match new {
                        None => splice(&ls, f.line, f.end, ""),
                        Some(value) => {
                            if f.end > f.line + 1 && v.is_empty() {
                                return Err(unsupported(path, "holds a block, not a value"));
                            }
                            let body = ls[f.line].text;
                            let eol = &body[body.trim_end_matches(['\n', '\r']).len()..];
                            let content = body.trim_end_matches(['\n', '\r']);
                            // the comment with the blanks before it, as they were
                            let tail = &content[f.after..];
                            let comment = tail
                                .find(" #")
                                .map(|i| &tail[tail[..=i].trim_end().len()..])
                                .unwrap_or("");
                            let line = format!(
                                "{} {}{}{}",
                                &content[..f.after],
                                scalar_text(value)?,
                                comment,
                                if eol.is_empty() { "\n" } else { eol }
                            );
                            splice(&ls, f.line, f.line + 1, &line)
                        }
                    });
                }
                if !v.is_empty() && v != "{}" && !v.starts_with('#') {
                    return Err(unsupported(
                        &path[..=depth],
                        "is written in flow style or holds a value; ferry edits block mappings only",
                    ));
                }
                if v == "{}" {
                    if new.is_none() {
                        return Ok(text.to_string());
                    }
                    // an empty map written `{}`: write the rest as a block under it
                    let indent = ls[f.line].indent + 2;
                    let content = ls[f.line].text.trim_end_matches(['\n', '\r']);
                    let head = format!("{}\n", &content[..f.after]);
                    let block = block(&path[depth + 1..], new, indent)?;
                    return Ok(splice(&ls, f.line, f.line + 1, &(head + &block)));
                }
                parent = Some(ls[f.line].indent);
                from = f.line + 1;
                to = f.end;
            }
            None => {
                let Some(value) = new else {
                    return Ok(text.to_string());
                };
                // add the rest of the path at the end of this block, at its children's indent
                let indent = ls[from..to]
                    .iter()
                    .find(|l| !l.blank && parent.is_none_or(|p| l.indent > p))
                    .map(|l| l.indent)
                    .unwrap_or_else(|| parent.map(|p| p + 2).unwrap_or(0));
                let mut at = to;
                while at > from && ls[at - 1].blank {
                    at -= 1;
                }
                let mut b = block(&path[depth..], Some(value), indent)?;
                if at > 0 && !ls[at - 1].text.ends_with('\n') {
                    b.insert(0, '\n');
                }
                return Ok(splice(&ls, at, at, &b));
            }
        }
    }
    Ok(text.to_string())
}

/// `path` as nested block maps at `indent`, ending in `value`.
fn block(path: &[&str], value: Option<&Value>, indent: usize) -> Result<String, EditError> {
    let mut s = String::new();
    for (i, k) in path.iter().enumerate() {
        let pad = " ".repeat(indent + 2 * i);
        let key = scalar_text(&Value::String((*k).to_string()))?;
        if i + 1 == path.len() {
            let v = value.map(scalar_text).transpose()?.unwrap_or_default();
            s.push_str(&format!("{pad}{key}: {v}\n"));
        } else {
            s.push_str(&format!("{pad}{key}:\n"));
        }
    }
    Ok(s)
}

fn splice(ls: &[Line<'_>], from: usize, to: usize, with: &str) -> String {
    let mut s = String::new();
    for l in &ls[..from] {
        s.push_str(l.text);
    }
    s.push_str(with);
    for l in &ls[to..] {
        s.push_str(l.text);
    }
    s
}

/// The value at `path` of a YAML text (`None` when missing).
pub fn get(text: &str, path: &[&str]) -> Result<Option<Value>, EditError> {
    let mut cur = &parse(text)?;
    for k in path {
        match cur.get(*k) {
            Some(v) => cur = v,
            None => return Ok(None),
        }
    }
    Ok(Some(cur.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "# RKE cluster for prod — edited by hand, keep the comments
nodes:
  - address: 10.0.1.1
    user: ubuntu
    role: [controlplane, etcd]
  - address: 10.0.2.1
    user: ubuntu
    role: [worker]

kubernetes_version: v1.26.15-rancher1-1   # pinned
services:
  kube-api:
    service_cluster_ip_range: 10.43.0.0/16
  kube-controller:
    cluster_cidr: 10.42.0.0/16
    extra_args:
      node-monitor-period: 4s   # faster failover

cloud_provider:
  name: aws
# end of file
";

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn a_new_key_goes_at_the_end_of_its_map_and_nothing_else_moves() {
        let out = set(
            CLUSTER,
            &[
                "services",
                "kube-controller",
                "extra_args",
                "enable-leader-migration",
            ],
            &s("true"),
        )
        .unwrap();
        assert_eq!(
            out,
            CLUSTER.replace(
                "      node-monitor-period: 4s   # faster failover\n",
                "      node-monitor-period: 4s   # faster failover\n      enable-leader-migration: \"true\"\n"
            )
        );
        // and back: the original, byte for byte
        assert_eq!(
            remove(
                &out,
                &[
                    "services",
                    "kube-controller",
                    "extra_args",
                    "enable-leader-migration"
                ]
            )
            .unwrap(),
            CLUSTER
        );
    }

    #[test]
    fn a_value_is_replaced_where_it_is_with_its_comment() {
        let out = set(CLUSTER, &["cloud_provider", "name"], &s("external-aws")).unwrap();
        assert_eq!(
            out,
            CLUSTER.replace("  name: aws\n", "  name: external-aws\n")
        );
        let v = set(CLUSTER, &["kubernetes_version"], &s("v1.27.16-rancher1-1")).unwrap();
        assert_eq!(
            v,
            CLUSTER.replace(
                "kubernetes_version: v1.26.15-rancher1-1   # pinned",
                "kubernetes_version: v1.27.16-rancher1-1   # pinned"
            )
        );
        let b = set(
            CLUSTER,
            &["cloud_provider", "useInstanceMetadataHostname"],
            &Value::Bool(true),
        )
        .unwrap();
        assert!(
            b.contains("  name: aws\n  useInstanceMetadataHostname: true\n# end of file\n"),
            "{b}"
        );
    }

    #[test]
    fn missing_maps_are_made_on_the_way() {
        let text = "nodes:\n  - address: 10.0.1.1\n    role: [controlplane]\n";
        let out = set(
            text,
            &[
                "services",
                "kube-controller",
                "extra_args",
                "enable-leader-migration",
            ],
            &s("true"),
        )
        .unwrap();
        assert_eq!(
            out,
            format!(
                "{text}services:\n  kube-controller:\n    extra_args:\n      enable-leader-migration: \"true\"\n"
            )
        );
        let empty = "services: {}\n";
        let out = set(
            empty,
            &["services", "kube-controller", "extra_args", "x"],
            &s("1"),
        )
        .unwrap();
        assert_eq!(
            out,
            "services:\n  kube-controller:\n    extra_args:\n      x: \"1\"\n"
        );
    }

    #[test]
    fn a_rancher_launched_cluster_s_config_is_walked_under_its_wrapper() {
        let text = "rancher_kubernetes_engine_config:\n  cloud_provider:\n    name: aws  # in-tree\n  services:\n    kube-controller:\n      extra_args: {}\n";
        let out = set(
            text,
            &["rancher_kubernetes_engine_config", "cloud_provider", "name"],
            &s("external-aws"),
        )
        .unwrap();
        assert!(out.contains("    name: external-aws  # in-tree\n"), "{out}");
        let out = set(
            text,
            &[
                "rancher_kubernetes_engine_config",
                "services",
                "kube-controller",
                "extra_args",
                "enable-leader-migration",
            ],
            &s("true"),
        )
        .unwrap();
        assert!(
            out.ends_with("      extra_args:\n        enable-leader-migration: \"true\"\n"),
            "{out}"
        );
    }

    #[test]
    fn what_cannot_be_edited_safely_is_refused() {
        let flow = "services: {kube-controller: {extra_args: {a: b}}}\n";
        assert!(matches!(
            set(
                flow,
                &["services", "kube-controller", "extra_args", "x"],
                &s("1")
            ),
            Err(EditError::Unsupported { .. })
        ));
        let anchors = "base: &b\n  a: 1\nservices:\n  <<: *b\n";
        assert!(matches!(
            set(anchors, &["services", "x"], &s("1")),
            Err(EditError::Unsupported { .. })
        ));
        assert!(matches!(
            set("a: [1\n", &["a"], &s("1")),
            Err(EditError::Parse(_))
        ));
        let block = "cloud_provider:\n  name: aws\n";
        assert!(matches!(
            set(block, &["cloud_provider"], &s("x")),
            Err(EditError::Unsupported { .. })
        ));
    }

    proptest::proptest! {
        /// Whatever the value, set then remove of a new key gives back the text; set twice is set once.
        #[test]
        fn set_then_remove_is_the_identity(v in "[a-zA-Z0-9 ._:/=-]{0,20}", key in "[a-z][a-z0-9-]{0,12}") {
            proptest::prop_assume!(key != "node-monitor-period");
            let path = ["services", "kube-controller", "extra_args", key.as_str()];
            let once = set(CLUSTER, &path, &s(&v)).unwrap();
            proptest::prop_assert_eq!(get(&once, &path).unwrap(), Some(s(&v)));
            proptest::prop_assert_eq!(set(&once, &path, &s(&v)).unwrap(), once.clone());
            proptest::prop_assert_eq!(remove(&once, &path).unwrap(), CLUSTER);
        }
    }
}
