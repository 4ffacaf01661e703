//! Helpers shared by the tests that spawn the `ferry` binary.
//!
//! Each integration test file compiles this module on its own and uses a subset of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A command for the built `ferry` binary.
pub fn ferry() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_ferry"))
}

/// An input file under `crates/cli/tests/data/`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The four real MKE 3 config-toml samples.
pub const REAL_SAMPLES: [&str; 4] = [
    "ucp-3.x-config.sample.toml",
    "ucp-config.azure-cloudinit.toml",
    "mke3-metallb-config.toml",
    "mke3-custom-kubelet-flags-profiles.toml",
];

/// The documented error line for a config-toml whose Calico is not on KDD (conversion rules §2,
/// §10.1).
pub const KDD_ERROR: &str = "Error: unable to generate upgrade config: unsupported configuration for mke4 upgrade: mke3 cluster is using etcdv3 and not kdd backend for calico";
/// ferry's error line for Calico on the eBPF dataplane (conversion rules §2).
pub const EBPF_ERROR: &str = "Error: unable to generate upgrade config: unsupported configuration for mke4 upgrade: mke3 cluster is using the calico ebpf dataplane";
/// ferry's error line for kube-proxy in IPVS mode (conversion rules §2).
pub const IPVS_ERROR: &str = "Error: unable to generate upgrade config: unsupported configuration for mke4 upgrade: mke3 cluster is using kube-proxy mode \"ipvs\"; only iptables is supported";

/// What a finished `ferry` process left behind.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion and captures its exit code and output (as UTF-8 text).
pub fn run(cmd: &mut assert_cmd::Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `ferry` with `args`.
pub fn ferry_run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(ferry().args(args))
}

impl Run {
    /// Asserts the exit code, showing both streams when it differs.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self.assert_no_panic()
    }

    /// Asserts that the process did not panic.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "ferry panicked:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts that standard error is exactly one line, `line`.
    pub fn assert_only_error(&self, line: &str) -> &Self {
        assert_eq!(self.stderr, format!("{line}\n"), "standard error");
        self
    }

    /// The lines of standard error that start with `Error:`.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .collect()
    }
}

/// Names in `dir` that look like ferry's temporary files (`.ferry-*.tmp`).
pub fn stray_temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ferry-") || n.ends_with(".tmp"))
        .collect()
}

/// The sorted names of the entries of `dir`.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A bad input file prepared in a temporary directory, with the error line ferry must print
/// for it (after `Error: <path>`).
#[derive(Debug)]
pub struct BadInput {
    pub name: &'static str,
    pub path: PathBuf,
    /// The exact text after `Error: <path>`.
    pub problem: String,
}

/// Writes one file per bad-input case into `dir` and returns them. The unreadable file is left
/// out when the current user can read it anyway (root).
pub fn bad_inputs(dir: &Path) -> Vec<BadInput> {
    let mut cases = Vec::new();
    let mut case = |name: &'static str, path: PathBuf, problem: &str| {
        cases.push(BadInput {
            name,
            path,
            problem: problem.to_string(),
        });
    };

    case("missing", dir.join("missing.toml"), ": no such file");

    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    case("empty", empty, ": file is empty");

    let blank = dir.join("blank.toml");
    std::fs::write(&blank, " \n\t\r\n  \n").unwrap();
    case("whitespace only", blank, ": file is empty");

    let subdir = dir.join("a-directory.toml");
    std::fs::create_dir(&subdir).unwrap();
    case("directory", subdir, ": is a directory, expected a file");

    case(
        "malformed TOML",
        data("malformed.toml"),
        ":3:22: key `cluster_config.kubelet_max_pods`: extra `=`, expected nothing",
    );
    case(
        "wrong value type",
        data("wrong-type.toml"),
        ":3:22: key `cluster_config.kubelet_max_pods`: expected an integer or a string of digits, found string \"abc\"",
    );
    // A user who passes mkectl's sorted report instead of the config-toml: the report repeats
    // top-level tables in each group.
    case(
        "sorted report instead of config",
        data("mkectl-compat-check.sorted-mke3.toml"),
        ":115:2: key `auth`: duplicate key",
    );

    let big = dir.join("big.toml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(10 * 1024 * 1024 + 1).unwrap();
    drop(f);
    case(
        "over 10 MiB",
        big,
        ": file is 10485761 bytes, larger than the 10 MiB limit",
    );

    let latin1 = dir.join("latin1.toml");
    std::fs::write(
        &latin1,
        b"[cluster_config]\n  calico_kdd = true\n  pre_logon_message = \"caf\xe9\"\n",
    )
    .unwrap();
    case(
        "not UTF-8",
        latin1,
        ": file is not valid UTF-8 (first bad byte at offset 63)",
    );

    let locked = dir.join("locked.toml");
    std::fs::write(&locked, "[cluster_config]\n  calico_kdd = true\n").unwrap();
    if make_unreadable(&locked) {
        case("unreadable", locked, ": permission denied");
    }
    cases
}

/// Removes every permission from `path`; false when the file can still be read (root).
fn make_unreadable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::read(path).is_err()
}

/// Splits a compatibility report into its groups: `(title, body)` in file order, where the body
/// is the text between this group's box (and the empty line after it) and the next box.
pub fn groups(report: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = report.lines().collect();
    let mut starts = Vec::new();
    for i in 1..lines.len().saturating_sub(1) {
        let (above, mid, below) = (lines[i - 1], lines[i], lines[i + 1]);
        let is_rule = |l: &str| !l.is_empty() && l.chars().all(|c| c == '#');
        if is_rule(above)
            && is_rule(below)
            && mid.starts_with("# ")
            && mid.ends_with(" #")
            && above.len() == mid.len()
        {
            starts.push((i, mid[2..mid.len() - 2].to_string()));
        }
    }
    // The first box is the banner.
    let mut out = Vec::new();
    for (k, (i, title)) in starts.iter().enumerate().skip(1) {
        let end = starts.get(k + 1).map_or(lines.len(), |(j, _)| j - 1);
        let body = lines[i + 2..end].join("\n");
        out.push((title.clone(), body.trim_start_matches('\n').to_string()));
    }
    out
}

/// The body of group `title` in `report`; panics when the group is absent.
pub fn group(report: &str, title: &str) -> String {
    groups(report)
        .into_iter()
        .find(|(t, _)| t == title)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no group {title:?} in report:\n{report}"))
}

/// The SSH testbed's state directory (`FERRY_TESTBED_DIR`). Panics, saying how to start it,
/// when it is missing or down: a test that needs it must not pass without it.
pub fn testbed(what: &str) -> PathBuf {
    let how = "start it with `sudo scripts/testbed up 5 && eval \"$(sudo scripts/testbed env)\"`, or run `scripts/test` (as root)";
    let dir = std::env::var_os("FERRY_TESTBED_DIR").unwrap_or_else(|| {
        panic!(
            "SSH TESTBED MISSING: FERRY_TESTBED_DIR is not set, so {what} cannot be tested: {how}"
        )
    });
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("hosts.yaml").is_file(),
        "SSH TESTBED DOWN: {} has no hosts.yaml: {how}",
        dir.display()
    );
    dir
}

/// A runtime for the async set-up of a synchronous test that runs the `ferry` binary.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}
