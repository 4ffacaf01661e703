//! Fuzz target: arbitrary bytes into `ferry_ssh_exec::parse_hosts` (the `hosts.yaml` reader).
//!
//! Errors are expected (most inputs are not a valid hosts file); a panic anywhere is a bug.
//! On success every host must have a name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(hosts) = ferry_ssh_exec::parse_hosts(text) {
        for host in &hosts {
            let _ = host.name();
        }
    }
});
