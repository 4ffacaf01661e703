//! The Upgrade Summary printed at the end of a successful upgrade, in mkectl's format
//! (`samples/mkectl-upgrade-summary.txt`): a title, then sections, each title followed by 15
//! dashes, one empty line between sections.

use ferry_config_convert::Conversion;

/// Fifteen dashes under every title.
pub const DASHES: &str = "---------------";

/// The ports MKE 4k no longer needs, in the documented order.
pub const UNUSED_PORTS: [u16; 23] = [
    2377, 6444, 7946, 9055, 12376, 12378, 12379, 12380, 12381, 12382, 12383, 12384, 12385, 12386,
    12387, 12388, 12389, 12391, 12392, 179, 12390, 2376, 443,
];

/// The whole summary: Configuration file (with ferry's additions and the MetalLB pools),
/// Authentication, Authorization, Ports, MCR, MKE3 Cleanup.
pub fn upgrade_summary(
    conversion: &Conversion,
    rbac: &ferry_rbac::Report,
    mke3_version: &str,
) -> String {
    assemble(
        &ferry_config_convert::report::configuration_summary(conversion),
        &rbac.summary_sections(),
        mke3_version,
    )
}

/// The summary from its two computed parts (kept in the state directory by the conversion and
/// the translation steps, so that nothing is converted twice).
pub fn assemble(configuration: &str, rbac_sections: &str, mke3_version: &str) -> String {
    let mut s = format!("Upgrade Summary\n{DASHES}\n\n");
    s.push_str(configuration);
    s.push('\n');
    s.push_str(rbac_sections);
    s.push('\n');
    let ports: Vec<String> = UNUSED_PORTS.iter().map(u16::to_string).collect();
    s.push_str(&format!(
        "Ports\n{DASHES}\nThe following MKE3 ports are no longer used by MKE 4k and (unless otherwise needed) may be made unavailable on all nodes: [{}]\n\n",
        ports.join(",")
    ));
    s.push_str(&format!("MCR\n{DASHES}\nMCR may safely be uninstalled\n\n"));
    s.push_str(&format!(
        "MKE3 Cleanup\n{DASHES}\nMKE {mke3_version} was uninstalled from the cluster successfully.\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"Upgrade Summary
---------------

Configuration file
---------------
All MKE 3 TOML settings were successfully converted into MKE 4 YAML settings.

Authentication
---------------
Users found in the MKE3 cluster: 1

All users were upgraded to the MKE 4k cluster successfully.

Authorization
---------------
Organizations found in the MKE3 cluster: 1
Teams found in the MKE3 cluster: 0

All organizations and teams were translated to aggregated roles in the MKE 4k cluster successfully.

Ports
---------------
The following MKE3 ports are no longer used by MKE 4k and (unless otherwise needed) may be made unavailable on all nodes: [2377,6444,7946,9055,12376,12378,12379,12380,12381,12382,12383,12384,12385,12386,12387,12388,12389,12391,12392,179,12390,2376,443]

MCR
---------------
MCR may safely be uninstalled

MKE3 Cleanup
---------------
MKE 3.8.5 was uninstalled from the cluster successfully.
"#;

    #[test]
    fn matches_the_documented_sample() {
        let conversion = ferry_config_convert::convert(
            "[cluster_config]\n  calico_kdd = true\n",
            &ferry_config_convert::Options::default(),
        )
        .unwrap();
        let export = ferry_rbac::Export::from_json(
            r#"{"version":1,"accounts":[
                {"name":"admin","id":"u1","isOrg":false,"isAdmin":true},
                {"name":"org1","id":"o1","isOrg":true}],
               "orgs":{"org1":{"members":[],"teams":[]}}}"#,
        )
        .unwrap();
        let t = ferry_rbac::translate(&export, &ferry_rbac::Options::default()).unwrap();
        let got = upgrade_summary(&conversion, &t.report, "3.8.5");
        // `reference/samples/mkectl-upgrade-summary.txt`, verbatim.
        let want = SAMPLE;
        assert_eq!(got.trim_end(), want.trim_end());
    }
}
