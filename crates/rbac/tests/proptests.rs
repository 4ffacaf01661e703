//! Property tests over random access models (up to 300 users, 12 organisations of up to 10
//! teams, 400 grants), with names drawn from a small pool so that sanitising collides often:
//! (a) every user reaches, through bindings and aggregation, exactly the roles MKE 3 gave it
//!     (its own, its organisations', its teams', the authenticated group's), never a role granted
//!     only to other teams or organisations (checked by the RBAC evaluator in `support/`);
//! (b) every name is valid and unique; (c) output does not depend on input order and is
//!     deterministic; (d) nothing panics, whatever the input.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use ferry_rbac::export::{
    Account, Collection, Export, Grant, Member, OrgExport, Role, Team, TeamExport,
};
use ferry_rbac::names::{self, NameRequest};
use proptest::prelude::*;

/// Names that collide after sanitising, hit reserved names, need cutting, or are not ASCII.
const POOL: &[&str] = &[
    "dev",
    "Dev",
    "DEV!",
    "ops",
    "ops-team",
    "view",
    "admin",
    "none",
    "fullcontrol",
    "mke3-admins",
    "a b",
    "Équipe",
    "日本",
    "",
    "x",
    "Platform Engineering and Site Reliability Department of Everything Worldwide",
    "Platform Engineering and Site Reliability Department of Everything Europe",
    "dev-97b9eea4",
    "no",
    "system:authenticated",
];
const NAMESPACES: &[&str] = &["dev", "prod", "web", "kube-system", "a", "Bad_NS", "x.y"];
const BUILTIN: &[&str] = &[
    "none",
    "viewonly",
    "restrictedcontrol",
    "scheduler",
    "fullcontrol",
];

#[derive(Debug, Clone)]
struct TeamSpec {
    name: usize,
    members: Vec<(usize, bool)>,
}

#[derive(Debug, Clone)]
struct OrgSpec {
    name: usize,
    members: Vec<(usize, bool)>,
    teams: Vec<TeamSpec>,
}

#[derive(Debug, Clone)]
struct GrantSpec {
    subject: (u8, usize),
    object: (u8, usize),
    role: (u8, usize),
}

#[derive(Debug, Clone)]
struct Spec {
    users: Vec<(usize, bool, bool)>,
    orgs: Vec<OrgSpec>,
    custom_roles: Vec<usize>,
    with_builtins: bool,
    grants: Vec<GrantSpec>,
}

fn member_list(max: usize) -> impl Strategy<Value = Vec<(usize, bool)>> {
    prop::collection::vec((0..10_000usize, prop::bool::weighted(0.1)), 0..max)
}

fn spec(
    max_users: usize,
    max_orgs: usize,
    max_teams: usize,
    max_grants: usize,
) -> impl Strategy<Value = Spec> {
    let team =
        (0..POOL.len(), member_list(30)).prop_map(|(name, members)| TeamSpec { name, members });
    let org = (
        0..POOL.len(),
        member_list(40),
        prop::collection::vec(team, 0..max_teams),
    )
        .prop_map(|(name, members, teams)| OrgSpec {
            name,
            members,
            teams,
        });
    let grant = (
        (0u8..10, 0..10_000usize),
        (0u8..10, 0..10_000usize),
        (0u8..10, 0..10_000usize),
    )
        .prop_map(|(subject, object, role)| GrantSpec {
            subject,
            object,
            role,
        });
    (
        prop::collection::vec(
            (
                0..POOL.len(),
                prop::bool::weighted(0.9),
                prop::bool::weighted(0.05),
            ),
            0..max_users,
        ),
        prop::collection::vec(org, 0..max_orgs),
        prop::collection::vec(0..POOL.len(), 0..6),
        prop::bool::weighted(0.9),
        prop::collection::vec(grant, 0..max_grants),
    )
        .prop_map(|(users, orgs, custom_roles, with_builtins, grants)| Spec {
            users,
            orgs,
            custom_roles,
            with_builtins,
            grants,
        })
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

/// Builds an export as the MKE 3 API would return it: unique account names, team names unique
/// inside their organisation, team and account IDs unique.
fn build(spec: &Spec) -> Export {
    let mut accounts = Vec::new();
    let mut users = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, &(pick, active, admin)) in spec.users.iter().enumerate() {
        // Suffixes keep names unique while still colliding after sanitising (`dev0`, `Dev0`).
        let name = format!("{}{}", POOL[pick], i % 3);
        if !seen.insert(name.clone()) {
            continue;
        }
        let a = account(name, format!("u{i}"), false, admin, active);
        users.push(a.clone());
        accounts.push(a);
    }
    let member = |(pick, admin): (usize, bool)| -> Option<Member> {
        (!users.is_empty()).then(|| Member {
            member: users[pick % users.len()].clone(),
            is_admin: admin,
        })
    };
    let mut orgs = BTreeMap::new();
    let mut team_ids = Vec::new();
    let mut org_ids = Vec::new();
    for (o, org) in spec.orgs.iter().enumerate() {
        let name = POOL[org.name].to_string();
        if !seen.insert(name.clone()) {
            continue;
        }
        let id = format!("o{o}");
        accounts.push(account(name.clone(), id.clone(), true, false, true));
        org_ids.push(id.clone());
        let mut team_names = BTreeSet::new();
        let mut teams = Vec::new();
        for (t, team) in org.teams.iter().enumerate() {
            let team_name = POOL[team.name].to_string();
            if !team_names.insert(team_name.clone()) {
                continue;
            }
            let team_id = format!("t{o}-{t}");
            team_ids.push(team_id.clone());
            teams.push(TeamExport {
                team: Team {
                    org_id: id.clone(),
                    name: team_name,
                    id: team_id,
                    description: String::new(),
                    members_count: 0,
                },
                members: team.members.iter().filter_map(|&m| member(m)).collect(),
            });
        }
        orgs.insert(
            name,
            OrgExport {
                members: org.members.iter().filter_map(|&m| member(m)).collect(),
                teams,
            },
        );
    }
    let mut roles: Vec<Role> = if spec.with_builtins {
        BUILTIN
            .iter()
            .map(|id| Role {
                id: id.to_string(),
                name: id.to_string(),
                system_role: true,
                operations: serde_json::Value::Null,
            })
            .collect()
    } else {
        Vec::new()
    };
    roles.extend(spec.custom_roles.iter().enumerate().map(|(i, &pick)| Role {
        id: format!("r{i}"),
        name: POOL[pick].to_string(),
        system_role: false,
        operations: serde_json::Value::Null,
    }));
    let collections = vec![
        collection("swarm", "/"),
        collection("shared", "/Shared"),
        collection("c-prod", "/prod"),
    ];
    let pick = |v: &[String], i: usize| -> Option<String> {
        (!v.is_empty()).then(|| v[i % v.len()].clone())
    };
    let user_ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
    let grants = spec
        .grants
        .iter()
        .filter_map(|g| {
            let subject = match g.subject.0 {
                0..=2 => pick(&user_ids, g.subject.1)?,
                3 | 4 => pick(&org_ids, g.subject.1)?,
                5 | 6 => pick(&team_ids, g.subject.1)?,
                7 => format!(
                    "system:serviceaccount:{}:sa{}",
                    NAMESPACES[g.subject.1 % 3],
                    g.subject.1 % 2
                ),
                8 => ["authenticated", "anonymous", "agent"][g.subject.1 % 3].to_string(),
                _ => format!("unknown{}", g.subject.1 % 3),
            };
            let (object, path) = match g.object.0 {
                0..=3 => ("kubernetesnamespaces".to_string(), None),
                4..=7 => (NAMESPACES[g.object.1 % NAMESPACES.len()].to_string(), None),
                8 => {
                    let c = &collections[g.object.1 % collections.len()];
                    let path = (g.object.1 % 2 == 0).then(|| c.path.clone());
                    (c.id.clone(), path)
                }
                _ => ("c-unlisted".to_string(), Some("/unlisted".to_string())),
            };
            let role = match g.role.0 {
                0..=7 => pick(&role_ids, g.role.1).unwrap_or_else(|| "viewonly".into()),
                _ => "r-deleted".to_string(),
            };
            Some(Grant {
                subject_id: subject,
                object_id: object,
                role_id: role,
                collection_path: path,
            })
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

fn collection(id: &str, path: &str) -> Collection {
    Collection {
        id: id.into(),
        name: id.into(),
        path: path.into(),
        parent_ids: Vec::new(),
        label_constraints: Vec::new(),
        legacylabelkey: String::new(),
        legacylabelvalue: String::new(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

proptest! {
    // Large models: each case translates twice and evaluates every user.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn large_models_give_exact_access_valid_names_and_stable_output(s in spec(300, 12, 10, 400)) {
        let export = build(&s);
        let (t, yaml) = support::checks::translate_and_check(&export);
        // (c) the same input twice gives the same bytes.
        let again = ferry_rbac::translate(&export, &ferry_rbac::Options::default()).unwrap();
        prop_assert_eq!(again.to_yaml().unwrap(), yaml);
        // Counts as documented.
        prop_assert_eq!(t.report.users, export.accounts.iter().filter(|a| !a.is_org).count());
        prop_assert_eq!(t.report.organizations, export.accounts.iter().filter(|a| a.is_org).count());
        prop_assert_eq!(t.report.teams, export.orgs.values().map(|o| o.teams.len()).sum::<usize>());
        prop_assert_eq!(t.report.grants.len(), export.grants.iter().collect::<BTreeSet<_>>().len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Small models, many of them: the same checks find corner cases faster.
    #[test]
    fn small_models_give_exact_access(s in spec(12, 4, 4, 20)) {
        support::checks::translate_and_check(&build(&s));
    }

    /// (b) for the shared naming algorithm on its own: valid, unique, never reserved, and the
    /// same name for the same identity whatever the order.
    #[test]
    fn sanitize_unique_gives_valid_unique_order_independent_names(
        raw in prop::collection::vec((0..POOL.len(), ".{0,70}", 0usize..4, 0usize..5), 0..60),
        rotate in 0usize..60,
    ) {
        let suffixes = ["", "-org", "-team", "-user", "-sa"];
        let mut seen = BTreeSet::new();
        let requests: Vec<NameRequest> = raw
            .iter()
            .filter_map(|(pick, free, which, suffix)| {
                let original = if *which == 0 { free.clone() } else { POOL[*pick].to_string() };
                let identity = format!("{suffix}:{original}:{which}");
                seen.insert(identity.clone()).then(|| {
                    NameRequest::new(identity, original, suffixes[*suffix])
                })
            })
            .collect();
        let reserved: BTreeSet<String> =
            ["view", "admin", "none", "dev-team"].iter().map(|s| s.to_string()).collect();
        let out = names::sanitize_unique(&requests, &reserved);
        let mut names_seen = BTreeSet::new();
        for (r, o) in requests.iter().zip(&out) {
            prop_assert!(names::is_dns1123_label(&o.name), "{:?} -> {:?}", r, o);
            prop_assert!(o.name.ends_with(&r.suffix));
            prop_assert!(!reserved.contains(&o.name));
            prop_assert!(names_seen.insert(o.name.clone()), "duplicate {}", o.name);
        }
        let mut rotated = requests.clone();
        if !rotated.is_empty() {
            let k = rotate % rotated.len();
            rotated.rotate_left(k);
        }
        let again = names::sanitize_unique(&rotated, &reserved);
        let by_id = |rs: &[NameRequest], os: &[names::NameOutcome]| -> BTreeMap<String, String> {
            rs.iter().zip(os).map(|(r, o)| (r.identity.clone(), o.name.clone())).collect()
        };
        prop_assert_eq!(by_id(&requests, &out), by_id(&rotated, &again));
    }

    /// (d) arbitrary edits of a valid export never panic: they parse or fail with a JSON path,
    /// and what parses translates.
    #[test]
    fn corrupted_exports_never_panic(
        s in spec(8, 3, 3, 10),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let text = serde_json::to_string(&build(&s)).unwrap();
        let mut bytes = text.into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let text = String::from_utf8_lossy(&bytes);
        match Export::from_json(&text) {
            Ok(export) => {
                let t = ferry_rbac::translate(&export, &ferry_rbac::Options::default()).unwrap();
                t.to_yaml().unwrap();
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
