//! Conversion benchmark: parse + convert + `to_yaml`, against a naive peer measured in the
//! same run (`toml::from_str::<toml::Value>` + `serde_yaml::to_string` of the same text, the
//! least any converter must do).
//!
//! Inputs: (1) the real UCP 3.x export (`tests/fixtures/ucp-3.x-config.sample.toml`), and
//! (2) a generated config with `calico_kdd = true`, 5,000 kubelet profiles and 5,000 custom
//! flags over the five `custom_*_flags` lists (names unique per list).
//!
//! Peak memory: the workspace forbids `unsafe_code` (`forbid` cannot be lifted by an inner
//! `allow`), so a counting `#[global_allocator]` is not possible here. Instead the bench runs
//! the large conversion once in a child process (itself, with `FERRY_BENCH_CHILD` set) and
//! reads `VmHWM` (peak resident set) from `/proc/self/status` there.
//!
//! `cargo bench -p ferry-config-convert --bench convert` runs the full measurement; without
//! `--bench` (e.g. `cargo test --all-targets`) it runs each case once as a smoke test.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ferry_config_convert::{Options, convert, to_yaml};

const SAMPLE: &str = include_str!("../tests/fixtures/ucp-3.x-config.sample.toml");
const PROFILES: usize = 5_000;
const CUSTOM_FLAGS: usize = 5_000;
const FLAG_LISTS: [&str; 5] = [
    "custom_kube_api_server_flags",
    "custom_kube_controller_manager_flags",
    "custom_kubelet_flags",
    "custom_kube_scheduler_flags",
    "custom_kube_proxy_flags",
];
const SAMPLE_TARGET: Duration = Duration::from_millis(1);
const LARGE_TARGET: Duration = Duration::from_millis(200);
const LARGE_PEAK_TARGET_KIB: u64 = 64 * 1024;
const CHILD_ENV: &str = "FERRY_BENCH_CHILD";

/// The generated large config-toml.
fn large_config() -> String {
    let mut s = String::with_capacity(1 << 20);
    s.push_str("[cluster_config]\n  calico_kdd = true\n  kubelet_max_pods = 110\n");
    let per_list = CUSTOM_FLAGS / FLAG_LISTS.len();
    for (l, list) in FLAG_LISTS.iter().enumerate() {
        let _ = write!(s, "  {list} = [");
        for i in 0..per_list {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "\"--bench-option-{l}-{i:04}=value-{i}\"");
        }
        s.push_str("]\n");
    }
    s.push_str("\n[cluster_config.custom_kubelet_flags_profiles]\n");
    for i in 0..PROFILES {
        let _ = writeln!(
            s,
            "  profile-{i:05} = \"--kube-reserved=cpu={}m,memory={}Mi --max-pods={} \
             --eviction-hard=memory.available<{}Mi --feature-gates=A=true\"",
            100 + i % 400,
            256 + i % 1024,
            100 + i % 150,
            100 + i % 50,
        );
    }
    s
}

fn lenient() -> Options {
    Options {
        allow_missing_calico_kdd: true,
        ..Default::default()
    }
}

/// parse + convert + to_yaml; returns the YAML length so nothing is optimised away.
fn ferry(text: &str, options: &Options) -> usize {
    let conversion = convert(text, options).unwrap();
    to_yaml(&conversion.config).unwrap().len()
}

fn peer(text: &str) -> usize {
    let value: toml::Value = toml::from_str(text).unwrap();
    serde_yaml::to_string(&value).unwrap().len()
}

struct Stats {
    median: Duration,
    min: Duration,
}

fn measure(warmup: usize, runs: usize, mut f: impl FnMut() -> usize) -> Stats {
    for _ in 0..warmup {
        black_box(f());
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    Stats {
        median: times[times.len() / 2],
        min: times[0],
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// In the child: generate, note the RSS, run once, report the peak.
fn child(which: &str) {
    let text = large_config();
    let before = kib("VmRSS:");
    let n = match which {
        "ferry" => ferry(&text, &Options::default()),
        _ => peer(&text),
    };
    black_box(n);
    println!("{} {}", kib("VmHWM:"), before);
}

/// Runs the large case once in a child process; returns (peak KiB, RSS before KiB).
fn peak_in_child(which: &str) -> (u64, u64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, which)
        .output()
        .unwrap();
    assert!(out.status.success(), "child {which} failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn main() {
    if let Ok(which) = std::env::var(CHILD_ENV) {
        child(&which);
        return;
    }
    let large = large_config();
    let strict = Options::default();
    let lenient = lenient();

    if !std::env::args().any(|a| a == "--bench") {
        // Smoke test under `cargo test --all-targets`.
        black_box(ferry(SAMPLE, &lenient));
        black_box(peer(SAMPLE));
        black_box(ferry(&large, &strict));
        black_box(peer(&large));
        println!("convert bench: smoke run ok (pass --bench to measure)");
        return;
    }

    println!(
        "ferry-config-convert conversion bench (parse + convert + to_yaml); peer = toml::Value + serde_yaml"
    );

    // (1) the real sample; it has no calico_kdd, so it converts as `ferry init` does.
    let f = measure(200, 2_000, || ferry(SAMPLE, &lenient));
    let p = measure(200, 2_000, || peer(SAMPLE));
    println!(
        "sample ucp-3.x-config ({} B, 2000 runs): ferry median {} min {} | peer median {} min {} | ratio ferry/peer {:.2} (median) | target < 1 ms: {}",
        SAMPLE.len(),
        us(f.median),
        us(f.min),
        us(p.median),
        us(p.min),
        ratio(f.median, p.median),
        verdict(f.median < SAMPLE_TARGET),
    );

    // (2) the generated large config.
    let f = measure(2, 21, || ferry(&large, &strict));
    let p = measure(2, 21, || peer(&large));
    println!(
        "large {PROFILES} profiles + {CUSTOM_FLAGS} flags ({} KiB, 21 runs): ferry median {} min {} | peer median {} min {} | ratio ferry/peer {:.2} (median) | target < 200 ms: {}",
        large.len() / 1024,
        ms(f.median),
        ms(f.min),
        ms(p.median),
        ms(p.min),
        ratio(f.median, p.median),
        verdict(f.median < LARGE_TARGET),
    );

    let (fp, fb) = peak_in_child("ferry");
    let (pp, pb) = peak_in_child("peer");
    println!(
        "large peak RSS (VmHWM, child process): ferry {:.1} MiB (+{:.1} MiB over {:.1} MiB before) | peer {:.1} MiB (+{:.1} MiB) | ratio ferry/peer {:.2} (growth) | target < 64 MiB: {}",
        fp as f64 / 1024.0,
        fp.saturating_sub(fb) as f64 / 1024.0,
        fb as f64 / 1024.0,
        pp as f64 / 1024.0,
        pp.saturating_sub(pb) as f64 / 1024.0,
        fp.saturating_sub(fb) as f64 / pp.saturating_sub(pb).max(1) as f64,
        verdict(fp < LARGE_PEAK_TARGET_KIB),
    );
}
