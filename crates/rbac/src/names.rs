//! Kubernetes object names: DNS-1123 sanitisation and deterministic collision resolution.
//!
//! The algorithm is the one of `rbac-mapping.md` section 5. It is public because other crates
//! (the configuration converter) name generated objects the same way:
//!
//! 1. [`sanitize_stem`]: lowercase, every character outside `[a-z0-9]` becomes `-`, runs of `-`
//!    collapse, `-` is trimmed at both ends, an empty result becomes `x`.
//! 2. [`sanitize`]: append the suffix, cutting the stem so the name fits in 63 characters.
//! 3. [`sanitize_unique`]: candidates whose names collide with each other or with a reserved
//!    name are **all** renamed to `<stem>-<h8><suffix>`, `h8` being the first 8 hex digits of
//!    the SHA-256 of the candidate's source identity; a renamed name that still collides gets 16
//!    digits. Because every member of a colliding group is renamed and hashes depend only on
//!    identities, the result does not depend on input order.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

/// Longest DNS-1123 label, and longest label value.
pub const MAX_LABEL_LEN: usize = 63;

/// Longest DNS-1123 subdomain (the limit of most Kubernetes object names).
pub const MAX_SUBDOMAIN_LEN: usize = 253;

/// Steps 1 and 2 of the sanitisation, without any length limit: lowercase ASCII alphanumerics
/// joined by single `-`, never empty.
pub fn sanitize_stem(original: &str) -> String {
    let mut out = String::with_capacity(original.len());
    for c in original.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            // A leading `-` is never pushed and runs collapse as they are built.
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// Cuts an already sanitised stem so that `stem + extra` fits in [`MAX_LABEL_LEN`], trimming a
/// `-` left at the cut. At least one character is kept.
fn cut_stem(stem: &str, extra: usize) -> &str {
    let max = MAX_LABEL_LEN.saturating_sub(extra).max(1);
    // The stem is ASCII, so any byte index is a character boundary.
    let cut = &stem[..stem.len().min(max)];
    let trimmed = cut.trim_end_matches('-');
    if trimmed.is_empty() { cut } else { trimmed }
}

/// The sanitised name of `original` with `suffix` (`-org`, `-team`, `-user`, `-sa`, or `""`),
/// at most 63 characters. `suffix` must itself be empty or `-` followed by lowercase
/// alphanumerics.
pub fn sanitize(original: &str, suffix: &str) -> String {
    let stem = sanitize_stem(original);
    format!("{}{suffix}", cut_stem(&stem, suffix.len()))
}

/// Whether `s` is a DNS-1123 label: 1 to 63 lowercase alphanumerics or `-`, starting and ending
/// with an alphanumeric. Namespace names and label values produced by ferry are labels.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b.iter().all(|c| ok(c) || *c == b'-')
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
}

/// Whether `s` is a DNS-1123 subdomain: labels joined by `.`, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= MAX_SUBDOMAIN_LEN && s.split('.').all(is_dns1123_label)
}

/// The first `digits` hex digits of the SHA-256 of `identity`.
pub fn identity_hash(identity: &str, digits: usize) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex.truncate(digits);
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One name wanted for a generated object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameRequest {
    /// Source identity the rename hash is computed from (`org:<org>`, `team:<org>/<team>`,
    /// `user:<user>`, `role:<role id>`, `sa:<ns>/<name>`, `group:system:authenticated`). It must
    /// be unique among the requests for the result to be meaningful.
    pub identity: String,
    /// The original, unsanitised name.
    pub original: String,
    /// Appended after sanitising (`-org`, `-team`, ..., or `""`).
    pub suffix: String,
}

impl NameRequest {
    pub fn new(
        identity: impl Into<String>,
        original: impl Into<String>,
        suffix: impl Into<String>,
    ) -> Self {
        Self {
            identity: identity.into(),
            original: original.into(),
            suffix: suffix.into(),
        }
    }
}

/// The name given to one [`NameRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameOutcome {
    /// The final, unique name.
    pub name: String,
    /// Sanitising changed the original (characters replaced, case folded, or cut to length).
    pub lossy: bool,
    /// A hash was added to resolve a collision or avoid a reserved name.
    pub renamed: bool,
}

impl NameOutcome {
    /// The final name without the request's suffix (the value ferry puts in labels).
    pub fn stem<'a>(&'a self, request: &NameRequest) -> &'a str {
        self.name
            .strip_suffix(request.suffix.as_str())
            .unwrap_or(&self.name)
    }
}

/// Names every request (section 5 of `rbac-mapping.md`). The result is aligned with
/// `requests`; every name is a DNS-1123 label, differs from every other result and from every
/// `reserved` name, and does not depend on the order of `requests`.
pub fn sanitize_unique(requests: &[NameRequest], reserved: &BTreeSet<String>) -> Vec<NameOutcome> {
    let stems: Vec<String> = requests
        .iter()
        .map(|r| sanitize_stem(&r.original))
        .collect();
    let mut out: Vec<NameOutcome> = requests
        .iter()
        .zip(&stems)
        .map(|(r, stem)| {
            let kept = cut_stem(stem, r.suffix.len());
            NameOutcome {
                name: format!("{kept}{}", r.suffix),
                lossy: kept != r.original,
                renamed: false,
            }
        })
        .collect();

    let mut counts: HashMap<&str, usize> = HashMap::with_capacity(out.len());
    for o in &out {
        *counts.entry(o.name.as_str()).or_default() += 1;
    }
    let first: Vec<usize> = (0..out.len())
        .filter(|&i| counts[out[i].name.as_str()] > 1 || reserved.contains(&out[i].name))
        .collect();
    drop(counts);

    let rename = |i: usize, hash: &str| -> String {
        let r = &requests[i];
        let kept = cut_stem(&stems[i], r.suffix.len() + 1 + hash.len());
        format!("{kept}-{hash}{}", r.suffix)
    };
    for &i in &first {
        out[i].name = rename(i, &identity_hash(&requests[i].identity, 8));
        out[i].renamed = true;
    }

    // Renamed names can still collide: with a name that was never renamed (an original that
    // happens to look like `<stem>-<h8><suffix>`), with each other (equal 8-digit prefixes or,
    // when a caller passed the same identity twice, equal hashes) or with a reserved name. Only
    // renamed candidates move again, with longer or position-salted hashes, until none collides.
    // Untouched names are already unique among themselves and not reserved, so this ends.
    let mut pending = first;
    let mut round = 1usize;
    while !pending.is_empty() {
        let mut counts: HashMap<&str, usize> = HashMap::with_capacity(out.len());
        for o in &out {
            *counts.entry(o.name.as_str()).or_default() += 1;
        }
        let mut colliding: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&i| counts[out[i].name.as_str()] > 1 || reserved.contains(&out[i].name))
            .collect();
        drop(counts);
        if colliding.is_empty() {
            break;
        }
        // Sorting by request content (the index only separates identical requests, whose
        // outcomes are interchangeable) keeps the salted round independent of input order.
        colliding.sort_by(|&a, &b| requests[a].cmp(&requests[b]).then(a.cmp(&b)));
        for (position, &i) in colliding.iter().enumerate() {
            let identity = &requests[i].identity;
            let hash = if round == 1 {
                identity_hash(identity, 16)
            } else {
                identity_hash(&format!("{identity}#{round}#{position}"), 16)
            };
            out[i].name = rename(i, &hash);
        }
        pending = colliding;
        round += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sanitises_case_punctuation_and_non_ascii() {
        assert_eq!(sanitize("Full Control", ""), "full-control");
        assert_eq!(sanitize("--Ünïcode__Team!!", "-team"), "n-code-team-team");
        assert_eq!(sanitize("***", "-org"), "x-org");
        assert_eq!(sanitize("", ""), "x");
        assert_eq!(sanitize("a..b", ""), "a-b");
    }

    #[test]
    fn cuts_long_names_to_63_and_trims_a_dash_left_at_the_cut() {
        let long = format!("{}-{}", "a".repeat(58), "b".repeat(10));
        let name = sanitize(&long, "-team");
        // 63 - 5 = 58 characters of stem fit; the cut lands right before the `-`.
        assert_eq!(name, format!("{}-team", "a".repeat(58)));
        assert!(name.len() <= 63);
        assert!(is_dns1123_label(&name));
    }

    #[test]
    fn label_and_subdomain_rules() {
        assert!(is_dns1123_label("a"));
        assert!(is_dns1123_label("dev-1"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("development-team.dev"));
        assert!(!is_dns1123_subdomain("development-team..dev"));
    }

    #[test]
    fn the_documented_team_collision() {
        let reqs = vec![
            NameRequest::new("team:globex/dev", "dev", "-team"),
            NameRequest::new("team:acme/dev", "dev", "-team"),
        ];
        let out = sanitize_unique(&reqs, &BTreeSet::new());
        assert_eq!(out[0].name, "dev-a72fe7b2-team");
        assert_eq!(out[1].name, "dev-97b9eea4-team");
        assert!(out.iter().all(|o| o.renamed && !o.lossy));
    }

    #[test]
    fn reserved_names_are_never_produced() {
        let reqs = vec![
            NameRequest::new("role:r1", "View", ""),
            NameRequest::new("role:r2", "fullcontrol", ""),
            NameRequest::new("role:r3", "viewer", ""),
        ];
        let out = sanitize_unique(&reqs, &reserved(&["view", "fullcontrol"]));
        assert_eq!(out[0].name, format!("view-{}", identity_hash("role:r1", 8)));
        assert!(out[0].lossy && out[0].renamed);
        assert_eq!(
            out[1].name,
            format!("fullcontrol-{}", identity_hash("role:r2", 8))
        );
        assert_eq!(out[2].name, "viewer");
        assert!(!out[2].renamed);
    }

    #[test]
    fn a_renamed_name_that_still_collides_gets_16_digits() {
        let h8 = identity_hash("team:acme/dev", 8);
        // A team literally named like the renamed form of another.
        let reqs = vec![
            NameRequest::new("team:acme/dev", "dev", "-team"),
            NameRequest::new("team:globex/dev", "dev", "-team"),
            NameRequest::new("team:initech/x", format!("dev-{h8}"), "-team"),
        ];
        let out = sanitize_unique(&reqs, &BTreeSet::new());
        assert_eq!(
            out[0].name,
            format!("dev-{}-team", identity_hash("team:acme/dev", 16))
        );
        assert_eq!(out[2].name, format!("dev-{h8}-team"));
        assert!(!out[2].renamed);
    }

    #[test]
    fn duplicate_identities_still_get_distinct_names() {
        let reqs = vec![
            NameRequest::new("org:a", "a", "-org"),
            NameRequest::new("org:a", "a", "-org"),
            NameRequest::new("org:a", "a", "-org"),
        ];
        let out = sanitize_unique(&reqs, &BTreeSet::new());
        let names: BTreeSet<_> = out.iter().map(|o| o.name.clone()).collect();
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| is_dns1123_label(n)));
    }

    #[test]
    fn renamed_long_names_stay_within_63() {
        let long = "x".repeat(100);
        let reqs = vec![
            NameRequest::new("org:1", long.clone(), "-org"),
            NameRequest::new("org:2", long.clone(), "-org"),
        ];
        let out = sanitize_unique(&reqs, &BTreeSet::new());
        for o in &out {
            assert_eq!(o.name.len(), 63, "{}", o.name);
            assert!(is_dns1123_label(&o.name));
            assert!(o.lossy);
        }
        assert_ne!(out[0].name, out[1].name);
    }

    #[test]
    fn the_result_does_not_depend_on_input_order() {
        let mut reqs = vec![
            NameRequest::new("team:a/dev", "dev", "-team"),
            NameRequest::new("team:b/dev", "Dev", "-team"),
            NameRequest::new("role:dev-team", "dev-team", ""),
            NameRequest::new("org:dev", "dev", "-org"),
        ];
        let forward = sanitize_unique(&reqs, &BTreeSet::new());
        let mut by_identity: Vec<(String, String)> = reqs
            .iter()
            .zip(&forward)
            .map(|(r, o)| (r.identity.clone(), o.name.clone()))
            .collect();
        reqs.reverse();
        let backward = sanitize_unique(&reqs, &BTreeSet::new());
        let mut by_identity_rev: Vec<(String, String)> = reqs
            .iter()
            .zip(&backward)
            .map(|(r, o)| (r.identity.clone(), o.name.clone()))
            .collect();
        by_identity.sort();
        by_identity_rev.sort();
        assert_eq!(by_identity, by_identity_rev);
    }
}
