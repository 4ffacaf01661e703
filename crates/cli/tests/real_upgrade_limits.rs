//! `ferry upgrade`'s results folder, its node-migration deadline and its support dump, on the MKE
//! 3 cluster of real parts (`mke_bed`: the SSH testbed's hosts with their Docker engines, swarm
//! and `ucp-kv` etcd, the real API server, the MKE 3 API process, the k0s double):
//!
//! 1. `--dry-run --output=DIR` writes the results folder and changes nothing (the digest of every
//!    host, of ucp-kv's keys and of the API server is the start's);
//! 2. a run whose `--upgrade-timeout-minutes 1` runs out while a manager is slow (its `docker
//!    container stop` takes minutes) rolls back to the start's digest, and the log says which
//!    deadline expired;
//! 3. that failed run leaves a support dump in the state directory, and a scan of every file in
//!    it finds no secret: not the MKE 3 admin password, not a secret of the MKE 3 configuration,
//!    no private key, no k0s join token.
//!
//! Needs `scripts/test` (as root), or the testbed with the MKE 3 profile and the control plane
//! by hand; without them the test FAILS naming what is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod mke_bed;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ferry_kube_api::testing::real::announce;
use mke_bed::digest::Digest;
use mke_bed::{Bed, PASSWORD, sh, ssh};

/// A `docker` in front of the real one: the commands whose arguments start with the line in
/// /etc/ferry-chaos/docker-slow wait 10 minutes first, and then run only if that file is still
/// there (a test that is over removes it, and the late command does nothing).
const SLOW_DOCKER: &str = r#"#!/bin/sh
# ferry test: a slow host
f=/etc/ferry-chaos/docker-slow
if [ -f "$f" ]; then
  while read -r c; do
    case "$*" in "$c"*)
      sleep 600
      [ -f "$f" ] || { echo "slow docker: the test is over" >&2; exit 1; }
      ;;
    esac
  done <"$f"
fi
exec /usr/bin/docker "$@"
"#;

fn put(bed: &Bed, host: &str, path: &str, content: &str) {
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
    let out = ssh(
        &bed.dir,
        host,
        &format!("mkdir -p {dir} && install -m 0755 /dev/stdin {path}"),
        content.as_bytes(),
    );
    assert!(out.status.success(), "{host}: {path}: {out:?}");
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The values of the secret settings of the MKE 3 configuration the MKE 3 API serves.
fn config_secrets() -> Vec<String> {
    fn walk(v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    let k = k.to_ascii_lowercase();
                    let secret = ["password", "secret", "passphrase", "token", "bindpw"]
                        .iter()
                        .any(|s| k.contains(s));
                    match x {
                        toml::Value::String(s) if secret && s.len() >= 4 => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(mke_bed::config_toml_path()).unwrap();
    let mut out = Vec::new();
    walk(&toml::from_str(&text).unwrap(), &mut out);
    out
}

/// Every secret the scan looks for, found in `text`.
fn secrets_in(text: &str, secrets: &[String]) -> Vec<String> {
    let mut found: Vec<String> = secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .cloned()
        .collect();
    for marker in ["PRIVATE KEY-----", "H4sIA"] {
        if text.contains(marker) {
            found.push(marker.to_string());
        }
    }
    found
}

#[test]
fn results_folder_deadline_and_support_dump_on_a_real_mke3_cluster() {
    let bed = Bed::open("`ferry upgrade` limits on an MKE 3 cluster of real parts");
    assert!(bed.managers >= 2, "the test wants at least 2 managers");
    bed.prepare();
    let mut secrets = config_secrets();
    secrets.push(PASSWORD.to_string());

    // 1. A dry run with --output writes the results folder and changes nothing.
    let start = Digest::take(&bed, Some(&bed.hosts[0]));
    let state = bed.tmp.path().join("state-dry");
    let results = bed.tmp.path().join("results");
    let mut args = bed.upgrade_args(&state, &bed.tmp.path().join("mke4-dry.yaml"));
    args.extend([
        "--dry-run".into(),
        format!("--output={}", results.display()),
    ]);
    let out = bed
        .ferry(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "dry run\n{stderr}");
    let folder = results.join("mke-upgrade");
    let mut names: Vec<String> = files(&folder)
        .iter()
        .map(|p| p.strip_prefix(&folder).unwrap().display().to_string())
        .collect();
    names.sort();
    for want in [
        "mke3.toml",
        "mke4.yaml",
        "version-checks.txt",
        "version-checks.json",
        "cluster-checks.txt",
        "cluster-checks.json",
        "node-checks.txt",
        "node-checks.json",
        "compatibility.txt",
        "compatibility.json",
        "summary.txt",
        "summary.json",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let read = |f: &str| std::fs::read_to_string(folder.join(f)).unwrap();
    for a in &bed.addresses {
        assert!(
            read("node-checks.txt").contains(&format!("({a})")),
            "{a}: {}",
            read("node-checks.txt")
        );
    }
    let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    assert_eq!(summary["outcome"], "dry-run", "{summary}");
    for f in files(&folder) {
        let found = secrets_in(&std::fs::read_to_string(&f).unwrap(), &secrets);
        assert!(found.is_empty(), "{} holds {found:?}", f.display());
    }
    let after = Digest::take(&bed, Some(&bed.hosts[0]));
    if let Some(d) = start.diff(&after) {
        panic!("the dry run changed the cluster:\n{d}");
    }
    announce(&format!(
        "dry run with --output: {} files in {}, nothing changed",
        names.len(),
        folder.display()
    ));

    // 2. The node migration outlasts --upgrade-timeout-minutes 1: a manager's `docker container
    //    stop` takes 10 minutes.
    let slow = &bed.hosts[1];
    put(&bed, slow, "/usr/local/bin/docker", SLOW_DOCKER);
    put(
        &bed,
        slow,
        "/etc/ferry-chaos/docker-slow",
        "container stop\n",
    );
    let state = bed.tmp.path().join("state-deadline");
    let mut args = bed.upgrade_args(&state, &bed.tmp.path().join("mke4-deadline.yaml"));
    args.extend(["--upgrade-timeout-minutes".into(), "1".into()]);
    let started = Instant::now();
    let out = bed
        .ferry(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let took = started.elapsed();
    sh(
        &bed.dir,
        slow,
        "rm -rf /etc/ferry-chaos /usr/local/bin/docker",
    );
    mke_bed::keep_journal(&state, "deadline");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(4), "want rolled back (4)\n{stderr}");
    let expired = "deadline exceeded: the node migration [Upgrade Tasks] (--upgrade-timeout-minutes 1) ran longer than 1 minute";
    assert!(
        stderr.contains("Deadline exceeded: the node migration [Upgrade Tasks] (--upgrade-timeout-minutes 1) ran longer than 1 minute: the run stops and rolls back"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Upgrade failed due to error: {expired}")),
        "{stderr}"
    );
    assert!(stderr.contains("was cut off by the deadline"), "{stderr}");
    // Rolled back long before the slow command would have ended.
    assert!(took.as_secs() < 540, "took {took:?}");
    let end = Digest::take(&bed, Some(&bed.hosts[0]));
    if let Some(d) = start.diff(&end) {
        panic!(
            "the rollback after the deadline did not give back the start:\n{d}\n--- ferry's log\n{stderr}"
        );
    }
    announce(&format!(
        "--upgrade-timeout-minutes 1 with a slow manager: rolled back to the start's digest in {:.1} s",
        took.as_secs_f64()
    ));

    // 3. The failed run left a support dump, named on stderr, without a secret in it.
    let named = stderr
        .lines()
        .find_map(|l| {
            l.split_once("Support dump: ")
                .map(|(_, p)| PathBuf::from(p.trim()))
        })
        .unwrap_or_else(|| panic!("no support dump named\n{stderr}"));
    assert!(named.starts_with(&state), "{}", named.display());
    let dump = if named.is_dir() {
        named.clone()
    } else {
        // a tarball beside its directory
        PathBuf::from(named.display().to_string().trim_end_matches(".tar.gz"))
    };
    let all = files(&dump);
    for h in &bed.hosts {
        assert!(
            all.iter()
                .any(|p| p.display().to_string().contains(h.as_str())
                    || bed
                        .addresses
                        .iter()
                        .any(|a| p.display().to_string().contains(a))),
            "nothing of {h} in the dump: {all:?}"
        );
    }
    assert!(
        all.iter().any(|p| p.ends_with("journal.jsonl")),
        "no journal in the dump: {all:?}"
    );
    let text: String = all
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    assert!(text.contains("ucp-"), "no MKE 3 container in the dump");
    for p in &all {
        let found = secrets_in(
            &String::from_utf8_lossy(&std::fs::read(p).unwrap()),
            &secrets,
        );
        assert!(found.is_empty(), "{} holds {found:?}", p.display());
    }
    announce(&format!(
        "support dump of the failed run: {} files, {} bytes, no secret found",
        all.len(),
        text.len()
    ));

    // The shared API server and the hosts as the suite's set-up made them, for the tests after.
    bed.restore();
}
