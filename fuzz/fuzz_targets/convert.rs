//! Fuzz target: arbitrary bytes into `analyze` and `convert`.
//!
//! Errors are expected (most inputs are not TOML); a panic anywhere is a bug. On success
//! the YAML must parse back and re-serialise byte for byte, and the reports must render.
#![no_main]

use ferry_config_convert::{
    Conversion, Error, Options, analyze, convert, from_yaml, report, to_yaml,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lenient = Options {
        allow_missing_calico_kdd: true,
        ..Default::default()
    };
    for options in [Options::default(), lenient] {
        if let Ok(conversion) = analyze(text, &options) {
            check(&conversion);
        }
        match convert(text, &options) {
            Ok(conversion) => check(&conversion),
            // The refused conversions carry the full analysis; its reports must render too.
            Err(Error::Blocked { conversion, .. } | Error::RepeatedFlags { conversion, .. }) => {
                render_reports(&conversion);
            }
            Err(_) => {}
        }
    }
});

fn check(conversion: &Conversion) {
    let yaml = to_yaml(&conversion.config).expect("to_yaml of a converted config");
    let back = from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("from_yaml of our own YAML failed: {e}\n---\n{yaml}"));
    let again = to_yaml(&back).expect("to_yaml of the re-parsed config");
    assert_eq!(yaml, again, "YAML does not round-trip");
    render_reports(conversion);
}

fn render_reports(conversion: &Conversion) {
    let _ = report::sorted_toml(conversion);
    let _ = report::human_readable(conversion);
    let _ = report::configuration_summary(conversion);
}
