//! How many workers may be unavailable at once (`--max-unavailable N` or `N%`): the width of
//! the sliding window (or the size of lockstep batches), never zero; and the order hosts enter
//! the window in.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::HostChain;

/// Orders `chains` slowest first by `estimate` (a host's measured time, for example how long its
/// facts took): the longest-processing-time rule, which keeps a sliding window's makespan close
/// to `max(longest chain, total work / width)` where list order can leave one slow host running
/// alone at the end. Equal estimates keep their order.
pub fn slowest_first(chains: &mut [HostChain], estimate: impl Fn(&str) -> Duration) {
    chains.sort_by_key(|c| std::cmp::Reverse(estimate(&c.host)));
}

/// The `--max-unavailable` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxUnavailable {
    /// At most this many workers at once (at least 1).
    Count(u32),
    /// At most this percentage of the workers, rounded down, but at least one (1..=100).
    Percent(u8),
}

impl Default for MaxUnavailable {
    /// 10 %, as k0sctl's `workerDisruptionPercent`.
    fn default() -> Self {
        MaxUnavailable::Percent(10)
    }
}

/// Why a `--max-unavailable` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --max-unavailable {value:?}: {reason}")]
pub struct MaxUnavailableError {
    pub value: String,
    pub reason: String,
}

impl FromStr for MaxUnavailable {
    type Err = MaxUnavailableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| MaxUnavailableError {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let n: u32 = p
                .parse()
                .map_err(|_| fail("expected a whole number of percent, e.g. 10%"))?;
            if n == 0 {
                return Err(fail("must be at least 1%"));
            }
            if n > 100 {
                return Err(fail("must be at most 100%"));
            }
            Ok(MaxUnavailable::Percent(n as u8))
        } else {
            let n: u32 = t
                .parse()
                .map_err(|_| fail("expected a count (e.g. 2) or a percentage (e.g. 10%)"))?;
            if n == 0 {
                return Err(fail("must be at least 1"));
            }
            Ok(MaxUnavailable::Count(n))
        }
    }
}

impl fmt::Display for MaxUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxUnavailable::Count(n) => write!(f, "{n}"),
            MaxUnavailable::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for MaxUnavailable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MaxUnavailable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl MaxUnavailable {
    /// The batch size for `workers` workers: the count, or `floor(workers * percent / 100)`,
    /// never less than 1 and never more than `workers` (except that it is 1 for no workers).
    pub fn batch_size(&self, workers: usize) -> usize {
        let raw = match *self {
            MaxUnavailable::Count(n) => n as usize,
            MaxUnavailable::Percent(p) => workers.saturating_mul(p as usize) / 100,
        };
        raw.clamp(1, workers.max(1))
    }
}

/// Splits `items` into consecutive batches of at most `limit.batch_size(items.len())`, keeping
/// their order. Every item is in exactly one batch; no batch is empty.
pub fn batches<T: Clone>(items: &[T], limit: MaxUnavailable) -> Vec<Vec<T>> {
    let size = limit.batch_size(items.len());
    items.chunks(size).map(<[T]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_counts_and_percentages() {
        assert_eq!("3".parse(), Ok(MaxUnavailable::Count(3)));
        assert_eq!("25%".parse(), Ok(MaxUnavailable::Percent(25)));
        assert_eq!(" 100% ".parse(), Ok(MaxUnavailable::Percent(100)));
        for bad in ["0", "0%", "101%", "-1", "x", "", "%", "1.5", "10 %x"] {
            assert!(bad.parse::<MaxUnavailable>().is_err(), "{bad}");
        }
        assert_eq!(
            "0".parse::<MaxUnavailable>().unwrap_err().to_string(),
            "invalid --max-unavailable \"0\": must be at least 1"
        );
    }

    #[test]
    fn slowest_hosts_go_first_and_ties_keep_their_order() {
        let chain = |h: &str| HostChain {
            host: h.into(),
            role: "worker".into(),
            steps: vec![],
        };
        let mut c = vec![chain("a"), chain("b"), chain("c"), chain("d")];
        let est = |h: &str| {
            Duration::from_millis(match h {
                "b" => 900,
                "d" => 300,
                _ => 100,
            })
        };
        slowest_first(&mut c, est);
        let order: Vec<&str> = c.iter().map(|c| c.host.as_str()).collect();
        assert_eq!(order, ["b", "d", "a", "c"]);
    }

    #[test]
    fn batch_arithmetic() {
        // k0sctl's lesson (PR #900): 10 % of 5 workers rounds down to 0 and must become 1.
        assert_eq!(MaxUnavailable::Percent(10).batch_size(5), 1);
        assert_eq!(MaxUnavailable::Percent(10).batch_size(100), 10);
        assert_eq!(MaxUnavailable::Percent(25).batch_size(10), 2);
        assert_eq!(MaxUnavailable::Percent(100).batch_size(7), 7);
        assert_eq!(MaxUnavailable::Count(3).batch_size(2), 2);
        assert_eq!(MaxUnavailable::Count(3).batch_size(0), 1);
        assert_eq!(MaxUnavailable::Count(2).batch_size(5), 2);
        let b = batches(&[1, 2, 3, 4, 5], MaxUnavailable::Count(2));
        assert_eq!(b, vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert!(batches::<u8>(&[], MaxUnavailable::Count(2)).is_empty());
    }

    fn limit() -> impl Strategy<Value = MaxUnavailable> {
        prop_oneof![
            (1u32..50).prop_map(MaxUnavailable::Count),
            (1u8..=100).prop_map(MaxUnavailable::Percent),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn batches_are_never_empty_never_too_big_and_cover_every_host_once(
            n in 0usize..300, limit in limit()
        ) {
            let hosts: Vec<usize> = (0..n).collect();
            let b = batches(&hosts, limit);
            let max = match limit {
                MaxUnavailable::Count(c) => c as usize,
                MaxUnavailable::Percent(p) => (n * p as usize / 100).max(1),
            };
            for batch in &b {
                prop_assert!(!batch.is_empty());
                prop_assert!(batch.len() <= max);
            }
            let flat: Vec<usize> = b.concat();
            prop_assert_eq!(flat, hosts);
            // Round-trips through its text form.
            prop_assert_eq!(limit.to_string().parse::<MaxUnavailable>().unwrap(), limit);
        }
    }
}
