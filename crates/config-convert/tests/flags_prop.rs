//! Property tests for flag-list parsing and kubelet profile flag conversion.

use ferry_config_convert::flags::{FlagItem, parse_flag_list, split_profile};
use ferry_config_convert::kubelet::{convert_profile_flag, profile_flag, set_path};
use proptest::prelude::*;
use serde_json::Map;

/// Int fields of kubelet-flags.md section 3 and the logging table, listed here independently of
/// the crate's own table so a wrong kind there shows up as a failure.
const INT_FLAGS: &[&str] = &[
    "port",
    "read-only-port",
    "registry-qps",
    "registry-burst",
    "event-qps",
    "event-burst",
    "healthz-port",
    "oom-score-adj",
    "image-gc-high-threshold",
    "image-gc-low-threshold",
    "max-pods",
    "pod-max-pids",
    "iptables-masquerade-bit",
    "iptables-drop-bit",
    "container-log-max-files",
    "node-status-max-images",
    "max-open-files",
    "kube-api-qps",
    "kube-api-burst",
    "eviction-max-pod-grace-period",
    "pods-per-core",
    "v",
];

const BOOL_FLAGS: &[&str] = &[
    "enable-server",
    "fail-swap-on",
    "anonymous-auth",
    "authentication-token-webhook",
    "rotate-server-certificates",
    "rotate-certificates",
    "enable-debugging-handlers",
    "contention-profiling",
    "cgroups-per-qos",
    "runonce",
    "cpu-cfs-quota",
    "enable-controller-attach-detach",
    "make-iptables-util-chains",
    "kernel-memcg-notification",
    "local-storage-capacity-isolation",
    "serialize-image-pulls",
    "protect-kernel-defaults",
    "register-node",
    "fail-cgroupv1",
    "seccomp-default",
    "log-text-split-stream",
    "log-json-split-stream",
];

/// Other names worth hitting: every composite kind, section 5 and 6 flags, near misses.
const OTHER_FLAGS: &[&str] = &[
    "sync-frequency",
    "cluster-dns",
    "kube-reserved",
    "eviction-hard",
    "feature-gates",
    "cpu-manager-policy-options",
    "manifest-url-header",
    "register-with-taints",
    "reserved-memory",
    "vmodule",
    "log-text-info-buffer-size",
    "cgroup-driver",
    "root-dir",
    "network-plugin",
    "max_pods",
    "bogus",
];

/// Items that look like flag lists: flags, values, dashes, separators and whitespace.
fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-a-z= \t]{0,12}",
        "(--|-)?[a-z]{0,4}([= ][a-z0-9=, ]{0,6})?",
        Just("--".to_owned()),
        Just(String::new()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(INT_FLAGS).prop_map(str::to_owned),
        proptest::sample::select(BOOL_FLAGS).prop_map(str::to_owned),
        proptest::sample::select(OTHER_FLAGS).prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[-+]?[0-9]{0,21}",
        "[-+]?[0-9.]{0,6}(ns|us|µs|ms|s|m|h|x)?",
        "(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False|yes)",
        "[a-zA-Z0-9.*/_-]{0,6}([=<:][a-zA-Z0-9.%-]{0,6})?(,[a-zA-Z0-9.*/_-]{0,6}([=<:][a-zA-Z0-9.%-]{0,6})?){0,3}",
        "[0-9]:(memory|hugepages-2Mi|cpu)=[0-9]{1,3}(Mi|Gi|x)?",
        "[a-z]{1,4}(=[a-z]{0,3})?:(NoSchedule|NoExecute|Bad)",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Never panics; every item lands in exactly one element, in order, with nothing lost.
    #[test]
    fn every_item_is_accounted_for(items in proptest::collection::vec(item(), 0..8)) {
        let parsed = parse_flag_list(&items);
        let trimmed: Vec<&str> = items.iter().map(|s| s.trim()).collect();
        let mut cursor = 0;
        for element in &parsed {
            let one = trimmed.get(cursor).copied();
            match element {
                FlagItem::NotAFlag { original } => {
                    prop_assert_eq!(Some(original.as_str()), one);
                    cursor += 1;
                }
                FlagItem::Flag(flag) => {
                    prop_assert!(!flag.name.is_empty());
                    prop_assert!(flag.original.starts_with("--"));
                    if Some(flag.original.as_str()) == one {
                        cursor += 1;
                    } else {
                        // The value came from the next item.
                        let two = trimmed.get(cursor + 1).copied();
                        prop_assert!(!flag.bare);
                        prop_assert_eq!(Some(flag.value.as_str()), two);
                        prop_assert_eq!(
                            Some(flag.original.clone()),
                            one.zip(two).map(|(a, b)| format!("{a} {b}"))
                        );
                        cursor += 2;
                    }
                    if flag.bare {
                        prop_assert_eq!(flag.value.as_str(), "true");
                    }
                }
            }
        }
        prop_assert_eq!(cursor, items.len());
    }

    /// The same input always gives the same output.
    #[test]
    fn parsing_is_deterministic(items in proptest::collection::vec(item(), 0..8)) {
        prop_assert_eq!(parse_flag_list(&items), parse_flag_list(&items));
    }

    /// Profile tokens never contain ASCII whitespace and parse without loss either.
    #[test]
    fn profile_split_then_parse(s in any::<String>()) {
        let tokens = split_profile(&s);
        for token in &tokens {
            prop_assert!(!token.is_empty());
            prop_assert!(!token.bytes().any(|b| b.is_ascii_whitespace()));
        }
        let originals: usize = parse_flag_list(&tokens)
            .iter()
            .map(|e| match e {
                FlagItem::Flag(f) if f.original.contains(' ') => 2,
                _ => 1,
            })
            .sum();
        prop_assert_eq!(originals, tokens.len());
    }

    /// Never panics; typed fields get typed JSON; any result fits into an empty tree.
    #[test]
    fn profile_flag_types(name in name(), value in value()) {
        let result = profile_flag(&name, &value);
        if let Ok(field) = &result {
            prop_assert!(!field.path.is_empty());
            if INT_FLAGS.contains(&name.as_str()) {
                prop_assert!(field.value.is_i64() || field.value.is_u64(), "{:?}", field.value);
            }
            if BOOL_FLAGS.contains(&name.as_str()) {
                prop_assert!(field.value.is_boolean(), "{:?}", field.value);
            }
            let mut root = Map::new();
            prop_assert_eq!(set_path(&mut root, field), Ok(()));
        }
        // Deterministic, and the reason text is never empty.
        prop_assert_eq!(&result, &profile_flag(&name, &value));
        if let Err(reason) = &result {
            prop_assert!(!reason.to_string().is_empty());
        }
    }

    /// Converting parsed flags of an arbitrary profile never panics.
    #[test]
    fn convert_parsed_profile(s in any::<String>()) {
        for element in parse_flag_list(&split_profile(&s)) {
            if let FlagItem::Flag(flag) = element {
                let _ = convert_profile_flag(&flag);
            }
        }
    }
}
