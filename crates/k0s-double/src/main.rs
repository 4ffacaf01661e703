//! `k0s`: a double of the k0s command line, for ferry's SSH testbed only (never shipped).
//!
//! The testbed's hosts are Debian roots in network namespaces with bash as PID 1 and no
//! systemd, and a real k0s binary cannot be had there. `ferry upgrade --k0s-binary FILE` installs
//! this binary instead, so it behaves like k0s v1.31 for every command ferry runs, keeps its
//! state in real files and fails the way k0s does:
//!
//! * `k0s install controller|worker` writes the service where k0s's service library puts it for
//!   the service manager k0s detects (systemd when `/run/systemd/system` is a directory, OpenRC
//!   when `openrc-init` exists, else SysV): `/etc/init.d/k0scontroller` (an executable script
//!   with a `cmd="..."` line, as the SysV template of k0s's service library has) or
//!   `/etc/systemd/system/k0scontroller.service`. The daemon's flags are recorded there.
//! * `k0s start` runs the service: a detached daemon (`k0s controller ...` / `k0s worker ...`)
//!   that listens on k0s's ports (controller 2380, 6443, 8132, 9443; worker 10250) and serves
//!   `/run/k0s/status.sock`. A port held by another process (MKE 3's ucp-proxy on 6443) makes the
//!   daemon exit, `k0s start` fail and `k0s status` report that k0s does not run.
//! * Join tokens are base64 of a gzipped kubeconfig (server URL, CA data, bootstrap token), as
//!   k0s makes them; the controller that created one accepts it on its API ports. A joining
//!   controller joins at start (and fails the start when refused); a worker keeps retrying in
//!   the background, as k0s's kubelet bootstrap does.
//!
//! Where it differs from real k0s:
//! * No Kubernetes: the ports accept connections and speak only the double's one-line join
//!   protocol; no etcd, no kubelet, no containerd. The "CA" in a token is random bytes.
//! * The init script delegates start/stop/status back to this binary (`k0s __initd NAME CMD`),
//!   and its `start` waits until the daemon serves its status socket or exits, where the real
//!   SysV script only checks that the process exists right after backgrounding it. So a held
//!   port fails `k0s start` here, where real k0s may only fail the later `k0s status`.
//! * On systemd hosts `k0s start`/`stop` run the daemon directly instead of asking systemctl.
//! * `k0s backup` runs the host's `tar`, and archives `/etc/k0s` and `/var/lib/k0s` instead of
//!   an etcd snapshot.
//! * `k0s etcd member-list` on a controller lists the members it knows of: itself and the
//!   controllers that joined through it (a joined controller knows the list as it was when it
//!   joined).
//!
//! * Node registration: with `$ROOT/etc/k0s-double/kubeconfig` present, a daemon that runs
//!   workloads registers its Node for kwok to keep Ready (see `node.rs`); `k0s stop` lets it go
//!   NotReady; `k0s reset` leaves the Node object, as real k0s does.
//!
//! * Versions: an unstamped build is k0s v1.31.1+k0s.1. A copy with
//!   `\n#k0s-double-version:<version>\n` appended is that release: `k0s version` prints it,
//!   the daemon started from it reports it in `k0s status`, and its Node reports the kubelet
//!   version `<k8s version>+k0s` (as k0s's kubelet does). The service runs the file at the path
//!   it was installed from, so swapping `/usr/local/bin/k0s` while k0s is stopped and starting
//!   it again is an upgrade, as with real k0s.
//!
//! Testing knobs (environment, recorded into the service so the daemon sees them too):
//! `K0S_DOUBLE_ROOT` (the filesystem root, default `/`; when set the root check is skipped),
//! `K0S_DOUBLE_PORT_OFFSET` (added to every port), `K0S_DOUBLE_HOSTNAME`, `K0S_DOUBLE_ADDRESS`.
//! `$ROOT/etc/k0s-double/fault` holds command names (`install`, `start`, `token create`, ...),
//! one a line: such a command fails and changes nothing.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: its output is its interface"
)]

mod cli;
mod daemon;
mod env;
mod node;
mod service;
mod token;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // cobra's format, which ferry shows to the user as the command's stderr.
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
