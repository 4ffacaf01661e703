//! The Calico KDD prerequisite of an MKE 3 → MKE 4k upgrade: `cluster_config.calico_kdd = true`
//! in the config-toml, changed in the text itself so that every other byte of the file stays as
//! the cluster gave it (comments, order, spacing), and checked by parsing both texts: the edit
//! may change that one key and nothing else.

use toml::Value;

/// The edit: the new text and what changed, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KddEdit {
    pub text: String,
    /// The 1-based line of the new text that holds the key.
    pub line: usize,
    /// That line before (`None` when the key was added).
    pub before: Option<String>,
    pub after: String,
}

/// Where the config stands, or why it cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KddError {
    #[error("Calico already uses the Kubernetes datastore (cluster_config.calico_kdd = true)")]
    AlreadyKdd,
    #[error("the config-toml is not valid TOML: {0}")]
    Toml(String),
    #[error("the config-toml has no [cluster_config] table")]
    NoClusterConfig,
    #[error("cluster_config.calico_kdd is {0}, not a boolean")]
    NotBool(String),
    #[error(
        "line {line}: cluster_config.calico_kdd is written in a way ferry does not edit ({text:?}): set it to true by hand"
    )]
    Unsupported { line: usize, text: String },
}

fn parse(text: &str) -> Result<toml::Table, KddError> {
    text.parse::<toml::Table>()
        .map_err(|e| KddError::Toml(e.to_string()))
}

/// `cluster_config.calico_kdd` of a config-toml: `Some(bool)`, or `None` when not set.
pub fn calico_kdd(text: &str) -> Result<Option<bool>, KddError> {
    let t = parse(text)?;
    let cc = t
        .get("cluster_config")
        .and_then(Value::as_table)
        .ok_or(KddError::NoClusterConfig)?;
    match cc.get("calico_kdd") {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(v) => Err(KddError::NotBool(v.to_string())),
    }
}

/// The table header a line opens, if any (`[cluster_config]` → `cluster_config`).
fn header(line: &str) -> Option<String> {
    let l = line.trim();
    let l = l.split('#').next().unwrap_or("").trim();
    if l.starts_with("[[") {
        return Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    l.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .map(|n| n.trim().trim_matches('"').to_string())
}

/// The config with `cluster_config.calico_kdd = true`.
pub fn enable(text: &str) -> Result<KddEdit, KddError> {
    if calico_kdd(text)? == Some(true) {
        return Err(KddError::AlreadyKdd);
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines
        .iter()
        .position(|l| header(l).as_deref() == Some("cluster_config"))
        // the table is there (parsed above) but written as a dotted key or inline table
        .ok_or(KddError::Unsupported {
            line: 1,
            text: "cluster_config not written as a [cluster_config] table".into(),
        })?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| header(l).is_some())
        .map_or(lines.len(), |i| start + 1 + i);
    let key = lines[start + 1..end].iter().position(|l| {
        let t = l.trim_start();
        t.strip_prefix("calico_kdd")
            .is_some_and(|r| r.trim_start().starts_with('='))
    });
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let (line, before, after) = match key {
        Some(i) => {
            let i = start + 1 + i;
            let old = lines[i];
            let eq = old.find('=').unwrap_or(0);
            let (lhs, rhs) = old.split_at(eq + 1);
            let value_start = rhs.len() - rhs.trim_start().len();
            let rest = &rhs[value_start..];
            let Some(tail) = rest.strip_prefix("false") else {
                return Err(KddError::Unsupported {
                    line: i + 1,
                    text: old.trim_end().to_string(),
                });
            };
            let new = format!("{lhs}{}true{tail}", &rhs[..value_start]);
            out[i] = new.clone();
            (
                i + 1,
                Some(old.trim_end_matches(['\n', '\r']).to_string()),
                new.trim_end_matches(['\n', '\r']).to_string(),
            )
        }
        None => {
            // right after the header, indented as the table's first key is
            let indent: String = lines[start + 1..end]
                .iter()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(|l| l[..l.len() - l.trim_start().len()].to_string())
                .unwrap_or_default();
            let nl = if lines[start].ends_with("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            if !out[start].ends_with('\n') {
                out[start].push_str(nl);
            }
            let new = format!("{indent}calico_kdd = true");
            out.insert(start + 1, format!("{new}{nl}"));
            (start + 2, None, new)
        }
    };
    let new_text: String = out.concat();
    // only that key changed: parse both, set it in the old one, compare
    let mut want = parse(text)?;
    if let Some(Value::Table(cc)) = want.get_mut("cluster_config") {
        cc.insert("calico_kdd".into(), Value::Boolean(true));
    }
    if parse(&new_text)? != want {
        return Err(KddError::Unsupported {
            line,
            text: after.clone(),
        });
    }
    Ok(KddEdit {
        text: new_text,
        line,
        before,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# MKE 3 config, by hand\n[scheduling_configuration]\n  enable_admin_ucp_scheduling = false\n\n[cluster_config]\n  controller_port = 443\n  calico_kdd = false   # etcd today\n  calico_vxlan = false\n\n[cluster_config.calico_ebpf]\n  enabled = false\n";

    #[test]
    fn only_the_key_changes_and_every_other_byte_stays() {
        let e = enable(CONFIG).unwrap();
        assert_eq!(
            e.text,
            CONFIG.replace("calico_kdd = false   # etcd", "calico_kdd = true   # etcd")
        );
        assert_eq!(e.line, 7);
        assert_eq!(
            e.before.as_deref(),
            Some("  calico_kdd = false   # etcd today")
        );
        assert_eq!(e.after, "  calico_kdd = true   # etcd today");
        assert_eq!(calico_kdd(&e.text), Ok(Some(true)));
        assert_eq!(enable(&e.text), Err(KddError::AlreadyKdd));
    }

    #[test]
    fn a_missing_key_is_added_under_its_table_and_bad_configs_are_refused() {
        let no_key = CONFIG.replace("  calico_kdd = false   # etcd today\n", "");
        let e = enable(&no_key).unwrap();
        assert_eq!(
            e.text,
            no_key.replace(
                "[cluster_config]\n",
                "[cluster_config]\n  calico_kdd = true\n"
            )
        );
        assert_eq!((e.line, e.before), (6, None));
        assert_eq!(enable("[other]\na = 1\n"), Err(KddError::NoClusterConfig));
        assert!(matches!(
            enable("[cluster_config\n"),
            Err(KddError::Toml(_))
        ));
        assert_eq!(
            enable("[cluster_config]\ncalico_kdd = \"no\"\n"),
            Err(KddError::NotBool("\"no\"".into()))
        );
        // written as an inline table: ferry does not rewrite it
        assert!(matches!(
            enable("cluster_config = { calico_kdd = false }\n"),
            Err(KddError::Unsupported { .. })
        ));
    }
}
