//! Fuzz target: arbitrary bytes into `ferry_rbac::Export::from_json` and `translate`.
//!
//! Errors are expected (most inputs are not an export, and `translate` refuses unsupported
//! export versions); a panic anywhere is a bug. On success the manifests must render as YAML
//! and the report's Upgrade Summary sections and details must render.
#![no_main]

use ferry_rbac::{Export, Options, translate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(export) = Export::from_json(text) else {
        return;
    };
    if let Ok(translation) = translate(&export, &Options::default()) {
        let _ = translation.to_yaml();
        let _ = translation.report.summary_sections();
        let _ = translation.report.details();
    }
});
