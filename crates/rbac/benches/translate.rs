//! Benchmark: translating a large MKE 3 access model (10,000 users, 200 organisations with
//! 2,000 teams, 20,000 grants) must take well under 500 ms.
//!
//! Run with `cargo bench -p ferry-rbac`. Prints the minimum and median of several runs for each
//! stage, and, as the in-run peer, the ratio to parsing the same export from JSON (a cost every
//! run pays anyway, so the ratio says how much the translation adds on top of reading input).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ferry_rbac::export::Team;
use ferry_rbac::export::{Account, Collection, Export, Grant, Member, OrgExport, Role, TeamExport};

const USERS: usize = 10_000;
const ORGS: usize = 200;
const TEAMS_PER_ORG: usize = 10;
const GRANTS: usize = 20_000;
const CUSTOM_ROLES: usize = 20;
const NAMESPACES: usize = 100;
const RUNS: usize = 15;
const BUDGET: Duration = Duration::from_millis(500);

/// A fixed-seed xorshift generator: the model is the same on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn account(name: String, id: String, is_org: bool, admin: bool, active: bool) -> Account {
    Account {
        name,
        id,
        full_name: String::new(),
        is_org,
        is_admin: admin,
        is_active: active,
        is_imported: false,
        members_count: 0,
        teams_count: 0,
        on_demand: None,
        otp_enabled: None,
    }
}

fn model() -> Export {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let users: Vec<Account> = (0..USERS)
        .map(|i| {
            account(
                format!("user{i:05}"),
                format!("u{i}"),
                false,
                i % 500 == 0,
                i % 97 != 0,
            )
        })
        .collect();
    let mut accounts = users.clone();
    let mut orgs = std::collections::BTreeMap::new();
    for o in 0..ORGS {
        // Every tenth organisation has a name that needs sanitising.
        let name = if o % 10 == 0 {
            format!("Org Number {o}")
        } else {
            format!("org{o:03}")
        };
        accounts.push(account(name.clone(), format!("o{o}"), true, false, true));
        let member_ids: Vec<usize> = (0..USERS).filter(|u| u % ORGS == o).collect();
        let mut teams: Vec<TeamExport> = (0..TEAMS_PER_ORG)
            .map(|t| TeamExport {
                team: Team {
                    org_id: format!("o{o}"),
                    // Team names repeat across organisations, so most of them collide.
                    name: format!("team{t}"),
                    id: format!("t{o}-{t}"),
                    description: String::new(),
                    members_count: 0,
                },
                members: Vec::new(),
            })
            .collect();
        for &u in &member_ids {
            for _ in 0..2 {
                let t = rng.below(TEAMS_PER_ORG);
                teams[t].members.push(Member {
                    member: users[u].clone(),
                    is_admin: false,
                });
            }
        }
        let members = member_ids
            .iter()
            .map(|&u| Member {
                member: users[u].clone(),
                is_admin: u % 50 == 0,
            })
            .collect();
        orgs.insert(name, OrgExport { members, teams });
    }
    let mut roles: Vec<Role> = [
        "none",
        "viewonly",
        "restrictedcontrol",
        "scheduler",
        "fullcontrol",
    ]
    .iter()
    .map(|id| Role {
        id: id.to_string(),
        name: id.to_string(),
        system_role: true,
        operations: serde_json::Value::Null,
    })
    .collect();
    roles.extend((0..CUSTOM_ROLES).map(|r| Role {
        id: format!("r{r}"),
        name: format!("Custom Role {r}"),
        system_role: false,
        operations: serde_json::Value::Null,
    }));
    let collections: Vec<Collection> = (0..50)
        .map(|c| Collection {
            id: format!("c{c}"),
            name: format!("c{c}"),
            path: format!("/apps/c{c}"),
            parent_ids: vec!["swarm".into()],
            label_constraints: Vec::new(),
            legacylabelkey: String::new(),
            legacylabelvalue: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
        })
        .collect();
    let grants = (0..GRANTS)
        .map(|_| {
            let subject = match rng.below(10) {
                0 => format!("o{}", rng.below(ORGS)),
                1..=4 => format!("t{}-{}", rng.below(ORGS), rng.below(TEAMS_PER_ORG)),
                _ => format!("u{}", rng.below(USERS)),
            };
            let role = roles[rng.below(roles.len())].id.clone();
            let (object, path) = match rng.below(10) {
                0..=1 => {
                    let c = rng.below(collections.len());
                    (format!("c{c}"), Some(format!("/apps/c{c}")))
                }
                2..=4 => ("kubernetesnamespaces".to_string(), None),
                _ => (format!("ns{}", rng.below(NAMESPACES)), None),
            };
            Grant {
                subject_id: subject,
                object_id: object,
                role_id: role,
                collection_path: path,
            }
        })
        .collect();
    Export {
        version: 1,
        accounts,
        orgs,
        roles,
        collections,
        grants,
    }
}

/// Runs `f` once to warm up, then `RUNS` times; returns the minimum and median time and the last
/// result. Freeing the previous result happens outside the timed region: a one-shot CLI never
/// needs to free it, and it is measured on its own below.
fn measure<T>(mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = f();
    for _ in 0..RUNS {
        let start = Instant::now();
        let value = f();
        times.push(start.elapsed());
        last = value;
    }
    times.sort();
    (times[0], times[RUNS / 2], last)
}

/// Minimum and median time to free a copy of `value`.
fn measure_drop<T: Clone>(value: &T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let copy = value.clone();
            let start = Instant::now();
            drop(copy);
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[RUNS / 2])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let export = model();
    let json = serde_json::to_string(&export).unwrap();
    let options = ferry_rbac::Options::default();
    if quick {
        let t = ferry_rbac::translate(&export, &options).unwrap();
        assert!(!t.to_yaml().unwrap().is_empty());
        return;
    }

    let (parse_min, parse_med, _) = measure(|| ferry_rbac::Export::from_json(&json).unwrap());
    let (tr_min, tr_med, t) = measure(|| ferry_rbac::translate(&export, &options).unwrap());
    let (yaml_min, yaml_med, yaml) = measure(|| t.to_yaml().unwrap());
    let (all_min, all_med, _) = measure(|| {
        let t = ferry_rbac::translate(&export, &options).unwrap();
        let yaml = t.to_yaml().unwrap();
        (t, yaml)
    });
    let (free_min, free_med) = measure_drop(&t);

    let r = &t.report;
    println!("ferry-rbac translate benchmark ({RUNS} runs after one warm-up; min / median)");
    println!(
        "  model: {} users, {} organisations, {} teams, {} grants ({} JSON bytes)",
        r.users,
        r.organizations,
        r.teams,
        r.grants.len(),
        json.len()
    );
    println!(
        "  output: {} objects, {} YAML bytes; {} grants converted, {} Swarm, {} other; {} renames",
        t.manifests.len(),
        yaml.len(),
        r.grants_converted(),
        r.grants_not_converted_swarm(),
        r.grants_not_converted_other(),
        r.renamed_objects()
    );
    println!(
        "  parse export JSON (peer): {} / {}",
        ms(parse_min),
        ms(parse_med)
    );
    println!(
        "  translate:                {} / {}",
        ms(tr_min),
        ms(tr_med)
    );
    println!(
        "  write YAML:               {} / {}",
        ms(yaml_min),
        ms(yaml_med)
    );
    println!(
        "  translate + write YAML:   {} / {}",
        ms(all_min),
        ms(all_med)
    );
    println!(
        "  (freeing a translation:  {} / {})",
        ms(free_min),
        ms(free_med)
    );
    println!(
        "  ratio translate+YAML / JSON parse (median): {:.2}",
        all_med.as_secs_f64() / parse_med.as_secs_f64()
    );
    let verdict = if all_med < BUDGET { "within" } else { "OVER" };
    println!("  budget {}: {verdict}", ms(BUDGET));
    if all_med >= BUDGET {
        std::process::exit(1);
    }
}
