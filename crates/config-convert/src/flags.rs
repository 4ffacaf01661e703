//! Parsing of flag lists: the `custom_*_flags` TOML arrays and the tokens of a kubelet profile
//! string (conversion-rules.md 4.1 and 5 step 1).
//!
//! The parser only splits items into names and values. It does not know any component's flags,
//! so every value stays the text the user wrote; typing happens later (see `kubelet.rs`).

use std::collections::HashMap;

/// Reason text for an item that is not a flag (conversion-rules.md 4.1 rule 2).
pub const NOT_A_FLAG: &str = "not a --flag";

/// One parsed flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The name without the leading `--`.
    pub name: String,
    /// The value as written; `"true"` for a bare flag with no value item after it.
    pub value: String,
    /// The source text: the trimmed item, or two trimmed items joined by one space when the
    /// value came from the next item (`"--service-sync-period 5m0s"`).
    pub original: String,
    /// True when no value was given at all (the value is the implied `"true"`).
    pub bare: bool,
}

/// One element of a parsed list, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagItem {
    /// A `--name[=value]` flag, possibly with the next item consumed as its value.
    Flag(Flag),
    /// An item that is not a flag and was not consumed as a value; reason [`NOT_A_FLAG`].
    NotAFlag {
        /// The trimmed item.
        original: String,
    },
}

impl FlagItem {
    /// The source text of this element (see [`Flag::original`]).
    pub fn original(&self) -> &str {
        match self {
            FlagItem::Flag(flag) => &flag.original,
            FlagItem::NotAFlag { original } => original,
        }
    }
}

/// Splits a trimmed item into `(name, value)` if it is a flag. `None` for a value-less
/// `--name`; the caller decides whether the next item becomes its value.
fn split_flag(item: &str) -> Option<(&str, Option<&str>)> {
    let rest = item.strip_prefix("--")?;
    let end = rest
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(rest.len());
    let (name, tail) = rest.split_at(end);
    // `--` alone and `--=x` have no name. A name starting with `-` (`---x`) is not a flag
    // either: pflag rejects it as "bad flag syntax", so passing it on would break the component.
    if name.is_empty() || name.starts_with('-') {
        return None;
    }
    match tail.strip_prefix('=') {
        // `--name=value`: everything after the first `=`, verbatim (may be empty, may hold `=`).
        Some(value) => Some((name, Some(value))),
        // `--name value` in one item, or `--name` alone (empty tail). The item is trimmed, so a
        // non-empty tail always has text after the whitespace.
        None if tail.is_empty() => Some((name, None)),
        None => Some((name, Some(tail.trim()))),
    }
}

/// Parses a flag list with the rules of conversion-rules.md 4.1, returning one element per flag
/// or non-flag item, in source order. Every input item ends up in exactly one element.
pub fn parse_flag_list<S: AsRef<str>>(items: &[S]) -> Vec<FlagItem> {
    let mut out = Vec::with_capacity(items.len());
    let mut iter = items.iter().map(|s| s.as_ref().trim()).peekable();
    while let Some(item) = iter.next() {
        let Some((name, value)) = split_flag(item) else {
            out.push(FlagItem::NotAFlag {
                original: item.to_owned(),
            });
            continue;
        };
        let flag = match value {
            Some(value) => Flag {
                name: name.to_owned(),
                value: value.to_owned(),
                original: item.to_owned(),
                bare: false,
            },
            None => match iter.next_if(|next| !next.starts_with("--")) {
                // The rule takes any next item that does not start with `--`, even an empty one.
                Some(next) => Flag {
                    name: name.to_owned(),
                    value: next.to_owned(),
                    original: format!("{item} {next}"),
                    bare: false,
                },
                None => Flag {
                    name: name.to_owned(),
                    value: "true".to_owned(),
                    original: item.to_owned(),
                    bare: true,
                },
            },
        };
        out.push(FlagItem::Flag(flag));
    }
    out
}

/// Splits a kubelet profile string into items for [`parse_flag_list`]: on ASCII whitespace,
/// quotes not interpreted (MKE 3 documents the flags as "separated by a space").
pub fn split_profile(s: &str) -> Vec<&str> {
    s.split_ascii_whitespace().collect()
}

/// Names that occur more than once (each name once, in first-occurrence order). A repeated
/// flag is an error for the whole name (conversion-rules.md 4.1 rule 3).
pub fn repeated_names(flags: &[Flag]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for flag in flags {
        *counts.entry(flag.name.as_str()).or_default() += 1;
    }
    let mut out: Vec<String> = Vec::new();
    for flag in flags {
        if counts.get(flag.name.as_str()).is_some_and(|&n| n > 1) && !out.contains(&flag.name) {
            out.push(flag.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(name: &str, value: &str, original: &str, bare: bool) -> FlagItem {
        FlagItem::Flag(Flag {
            name: name.to_owned(),
            value: value.to_owned(),
            original: original.to_owned(),
            bare,
        })
    }

    fn not_a_flag(original: &str) -> FlagItem {
        FlagItem::NotAFlag {
            original: original.to_owned(),
        }
    }

    fn flags_of(items: &[FlagItem]) -> Vec<Flag> {
        items
            .iter()
            .filter_map(|i| match i {
                FlagItem::Flag(f) => Some(f.clone()),
                FlagItem::NotAFlag { .. } => None,
            })
            .collect()
    }

    // --- The example rows of conversion-rules.md 4.1, one test each. ---

    #[test]
    fn table_name_equals_value() {
        assert_eq!(
            parse_flag_list(&["--enable-garbage-collector=false"]),
            vec![flag(
                "enable-garbage-collector",
                "false",
                "--enable-garbage-collector=false",
                false
            )]
        );
    }

    #[test]
    fn table_bare_flag_is_true() {
        assert_eq!(
            parse_flag_list(&["--profiling"]),
            vec![flag("profiling", "true", "--profiling", true)]
        );
    }

    #[test]
    fn table_value_in_next_item() {
        assert_eq!(
            parse_flag_list(&["--service-sync-period", "5m0s"]),
            vec![flag(
                "service-sync-period",
                "5m0s",
                "--service-sync-period 5m0s",
                false
            )]
        );
    }

    #[test]
    fn table_value_after_space_in_one_item() {
        assert_eq!(
            parse_flag_list(&["--service-sync-period 5m0s"]),
            vec![flag(
                "service-sync-period",
                "5m0s",
                "--service-sync-period 5m0s",
                false
            )]
        );
    }

    #[test]
    fn table_non_flag_after_valued_flag() {
        assert_eq!(
            parse_flag_list(&["--a=1", "x"]),
            vec![flag("a", "1", "--a=1", false), not_a_flag("x")]
        );
    }

    #[test]
    fn table_not_a_flag_items() {
        for item in ["5m0s", "-v=2", "--"] {
            assert_eq!(parse_flag_list(&[item]), vec![not_a_flag(item)], "{item}");
        }
        assert_eq!(NOT_A_FLAG, "not a --flag");
    }

    #[test]
    fn table_repeated_flag() {
        let parsed = parse_flag_list(&["--v=2", "--v=4"]);
        assert_eq!(
            parsed,
            vec![
                flag("v", "2", "--v=2", false),
                flag("v", "4", "--v=4", false)
            ]
        );
        assert_eq!(repeated_names(&flags_of(&parsed)), vec!["v".to_owned()]);
    }

    // --- Further rules. ---

    #[test]
    fn items_are_trimmed() {
        assert_eq!(
            parse_flag_list(&["  --a=1\t", " x "]),
            vec![flag("a", "1", "--a=1", false), not_a_flag("x")]
        );
        assert_eq!(
            parse_flag_list(&[" --a ", " 5 "]),
            vec![flag("a", "5", "--a 5", false)]
        );
    }

    #[test]
    fn value_after_equals_is_verbatim() {
        assert_eq!(
            parse_flag_list(&["--a=b=c d"]),
            vec![flag("a", "b=c d", "--a=b=c d", false)]
        );
        assert_eq!(
            parse_flag_list(&["--a= x "]),
            // The item is trimmed, the value after `=` is not.
            vec![flag("a", " x", "--a= x", false)]
        );
        assert_eq!(
            parse_flag_list(&["--a="]),
            vec![flag("a", "", "--a=", false)]
        );
    }

    #[test]
    fn name_ends_at_first_equals_or_whitespace() {
        // Whitespace first: the value is the trimmed rest, `=` included.
        assert_eq!(
            parse_flag_list(&["--a  =b"]),
            vec![flag("a", "=b", "--a  =b", false)]
        );
        // `=` first: whitespace belongs to the value.
        assert_eq!(
            parse_flag_list(&["--a=b c"]),
            vec![flag("a", "b c", "--a=b c", false)]
        );
        assert_eq!(
            parse_flag_list(&["--a\t b  c"]),
            vec![flag("a", "b  c", "--a\t b  c", false)]
        );
    }

    #[test]
    fn value_in_one_item_does_not_consume_next() {
        assert_eq!(
            parse_flag_list(&["--a 1", "x"]),
            vec![flag("a", "1", "--a 1", false), not_a_flag("x")]
        );
    }

    #[test]
    fn bare_flag_does_not_consume_a_flag() {
        assert_eq!(
            parse_flag_list(&["--a", "--b=2"]),
            vec![
                flag("a", "true", "--a", true),
                flag("b", "2", "--b=2", false)
            ]
        );
        // A bare `--` starts with `--`, so it is not consumed either, and is then not a flag.
        assert_eq!(
            parse_flag_list(&["--a", "--"]),
            vec![flag("a", "true", "--a", true), not_a_flag("--")]
        );
    }

    #[test]
    fn bare_flag_consumes_single_dash_and_plain_items() {
        assert_eq!(
            parse_flag_list(&["--a", "-v=2", "x"]),
            vec![flag("a", "-v=2", "--a -v=2", false), not_a_flag("x")]
        );
        // Only one item is consumed.
        assert_eq!(
            parse_flag_list(&["--a", "1", "2"]),
            vec![flag("a", "1", "--a 1", false), not_a_flag("2")]
        );
    }

    #[test]
    fn bare_flag_consumes_an_empty_next_item() {
        // The rule only asks that the next item not start with `--`.
        assert_eq!(
            parse_flag_list(&["--a", "  "]),
            vec![flag("a", "", "--a ", false)]
        );
    }

    #[test]
    fn consumed_item_is_trimmed_but_kept_verbatim_otherwise() {
        assert_eq!(
            parse_flag_list(&["--a", " b c "]),
            vec![flag("a", "b c", "--a b c", false)]
        );
    }

    #[test]
    fn items_without_a_name_are_not_flags() {
        for item in [
            "", "x", "-v", "-v=2", "--", "--=x", "-- x", "---x", "---x=1", "—x",
        ] {
            assert_eq!(
                parse_flag_list(&[item]),
                vec![not_a_flag(item.trim())],
                "{item:?}"
            );
        }
    }

    #[test]
    fn not_a_flag_after_bare_flag_at_end() {
        assert_eq!(
            parse_flag_list(&["x", "--a"]),
            vec![not_a_flag("x"), flag("a", "true", "--a", true)]
        );
    }

    #[test]
    fn empty_list() {
        assert_eq!(parse_flag_list::<&str>(&[]), vec![]);
    }

    #[test]
    fn accepts_owned_strings() {
        let items = vec!["--a".to_owned(), "1".to_owned()];
        assert_eq!(
            parse_flag_list(&items),
            vec![flag("a", "1", "--a 1", false)]
        );
    }

    #[test]
    fn original_accessor() {
        let parsed = parse_flag_list(&["--a", "1", "x"]);
        let originals: Vec<&str> = parsed.iter().map(FlagItem::original).collect();
        assert_eq!(originals, vec!["--a 1", "x"]);
    }

    #[test]
    fn split_profile_on_ascii_whitespace() {
        assert_eq!(
            split_profile(
                "  --kube-reserved=cpu=200m,memory=512Mi \t--kube-reserved-cgroup=/high\n"
            ),
            vec![
                "--kube-reserved=cpu=200m,memory=512Mi",
                "--kube-reserved-cgroup=/high"
            ]
        );
        // Quotes are not interpreted.
        assert_eq!(split_profile(r#"--a="x y""#), vec![r#"--a="x"#, r#"y""#]);
        assert!(split_profile("").is_empty());
        assert!(split_profile(" \t\n ").is_empty());
        // Non-ASCII whitespace does not split.
        assert_eq!(split_profile("--a\u{a0}b"), vec!["--a\u{a0}b"]);
    }

    #[test]
    fn profile_tokens_with_separate_values() {
        let tokens = split_profile("--max-pods 200 --fail-swap-on --v 2");
        assert_eq!(
            parse_flag_list(&tokens),
            vec![
                flag("max-pods", "200", "--max-pods 200", false),
                flag("fail-swap-on", "true", "--fail-swap-on", true),
                flag("v", "2", "--v 2", false),
            ]
        );
    }

    #[test]
    fn repeated_names_in_first_occurrence_order() {
        let parsed = parse_flag_list(&["--b=1", "--a=1", "--c", "--a=2", "--b", "--b=3"]);
        assert_eq!(
            repeated_names(&flags_of(&parsed)),
            vec!["b".to_owned(), "a".to_owned()]
        );
        assert!(repeated_names(&flags_of(&parse_flag_list(&["--a", "--b"]))).is_empty());
        assert!(repeated_names(&[]).is_empty());
    }
}
