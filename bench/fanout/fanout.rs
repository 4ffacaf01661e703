//! ferry's side of the SSH fan-out benchmark (`bench/fanout/run.sh`): run one command on every
//! host of a hosts file through ferry-ssh-exec.
//!
//! ```text
//! fanout --hosts-path FILE [--known-hosts FILE] [--ssh-config FILE] [--cmd "true"]
//!        [--warm-rounds K] [--no-remote-timeout]
//! ```
//!
//! Without `--warm-rounds` (cold): for every host at once, connect, run the command, close; then
//! exit. The benchmark times the whole process. With `--warm-rounds K`: connect,
//! run one round, then K more rounds on the open connections, timing each round inside the
//! process, and print one JSON line with the phases in milliseconds. Exits 1 when any host fails
//! or any command exits non-zero.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::{Cmd, HostExec};
use ferry_ssh_exec::{SshConnector, SshOptions, read_hosts_file};

struct Args {
    hosts: PathBuf,
    known_hosts: Option<PathBuf>,
    ssh_config: Option<PathBuf>,
    cmd: Vec<String>,
    warm_rounds: usize,
    remote_timeout: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        hosts: PathBuf::new(),
        known_hosts: None,
        ssh_config: None,
        cmd: vec!["true".into()],
        warm_rounds: 0,
        remote_timeout: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--hosts-path" => a.hosts = val()?.into(),
            "--known-hosts" => a.known_hosts = Some(val()?.into()),
            "--ssh-config" => a.ssh_config = Some(val()?.into()),
            "--cmd" => a.cmd = val()?.split_whitespace().map(String::from).collect(),
            "--warm-rounds" => a.warm_rounds = val()?.parse().map_err(|e| format!("{e}"))?,
            "--no-remote-timeout" => a.remote_timeout = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.hosts.as_os_str().is_empty() || a.cmd.is_empty() {
        return Err("usage: fanout --hosts-path FILE [--known-hosts FILE] [--ssh-config FILE] [--cmd CMD] [--warm-rounds K]".into());
    }
    Ok(a)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn round(hosts: &[Arc<dyn HostExec>], cmd: &Cmd) -> Result<Duration, String> {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for h in hosts {
        let h = Arc::clone(h);
        let cmd = cmd.clone();
        set.spawn(async move { h.run(&cmd).await.map(|o| (h.host().to_string(), o)) });
    }
    while let Some(r) = set.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok((_, out)) if out.success() => {}
            Ok((host, out)) => {
                return Err(format!(
                    "{host}: exit {:?}: {}",
                    out.code,
                    out.stderr_text()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(start.elapsed())
}

async fn main_async(a: Args) -> Result<(), String> {
    let t0 = Instant::now();
    let specs = read_hosts_file(&a.hosts).map_err(|e| e.to_string())?;
    let connector = SshConnector::new(SshOptions {
        known_hosts_file: a.known_hosts,
        ssh_config: a.ssh_config,
        max_connecting: std::env::var("FANOUT_MAX_CONNECTING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SshOptions::default().max_connecting),
        remote_timeout: a.remote_timeout,
        ..SshOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let cmd = Cmd::new(a.cmd[0].clone()).args(a.cmd[1..].iter().cloned());
    if a.warm_rounds == 0 {
        // Cold: every host on its own, connect -> run -> close, all hosts at once (no barrier
        // between connecting and running, as any fan-out would do it).
        let mut set = tokio::task::JoinSet::new();
        for s in specs {
            let c = connector.clone();
            let cmd = cmd.clone();
            set.spawn(async move {
                use ferry_core::Connector;
                let h = c.connect(&s).await.map_err(|e| e.to_string())?;
                let out = h.run(&cmd).await.map_err(|e| e.to_string())?;
                h.close().await.map_err(|e| e.to_string())?;
                if out.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{}: exit {:?}: {}",
                        h.host(),
                        out.code,
                        out.stderr_text()
                    ))
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| e.to_string())??;
        }
        return Ok(());
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, s) in specs.into_iter().enumerate() {
        let c = connector.clone();
        set.spawn(async move {
            use ferry_core::Connector;
            c.connect(&s).await.map(|h| (i, h))
        });
    }
    let mut hosts = Vec::new();
    while let Some(r) = set.join_next().await {
        hosts.push(r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?);
    }
    hosts.sort_by_key(|(i, _)| *i);
    let hosts: Vec<Arc<dyn HostExec>> = hosts.into_iter().map(|(_, h)| h).collect();
    let connected = t0.elapsed();
    let first = round(&hosts, &cmd).await?;
    let mut warm = Vec::new();
    for _ in 0..a.warm_rounds {
        warm.push(round(&hosts, &cmd).await?);
    }
    let t_close = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for h in &hosts {
        let h = Arc::clone(h);
        set.spawn(async move { h.close().await });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    let closed = t_close.elapsed();
    if a.warm_rounds > 0 {
        let mut w: Vec<f64> = warm.iter().map(|d| ms(*d)).collect();
        w.sort_by(f64::total_cmp);
        let median = w[w.len() / 2];
        println!(
            "{{\"hosts\": {}, \"connect_ms\": {:.1}, \"first_round_ms\": {:.1}, \"warm_rounds\": {}, \"warm_min_ms\": {:.1}, \"warm_median_ms\": {:.1}, \"warm_max_ms\": {:.1}, \"close_ms\": {:.1}, \"total_ms\": {:.1}}}",
            hosts.len(),
            ms(connected),
            ms(first),
            w.len(),
            w[0],
            median,
            w[w.len() - 1],
            ms(closed),
            ms(t0.elapsed())
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fanout: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fanout: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_async(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout: {e}");
            ExitCode::FAILURE
        }
    }
}
