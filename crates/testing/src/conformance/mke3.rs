//! The one conformance suite for [`Mke3Api`] implementations.
//!
//! Every implementation runs it: the in-memory fake (this crate) and the HTTPS client of
//! `ferry-mke3-api` against the in-process MKE 3 server of `ferry-mke3-sim`
//! (`crates/mke3-api/tests/conformance.rs`). A runner implements [`Mke3Setup`]: given a
//! [`Mke3Seed`] (an RBAC model, a version and a config TOML), it returns a backend that serves
//! exactly that, fresh for each case. [`run_suite`] returns a [`SuiteReport`] with one result per
//! case; it never panics on a failing case.
//!
//! # The behaviour checked
//!
//! - `ping` succeeds; `version` is the seeded version (without a `ucp/` prefix).
//! - `config_toml` is the seeded TOML, byte for byte. `put_config_toml` replaces it (a later
//!   `config_toml` returns the new text) and returns the server's message; switching
//!   `calico_kdd` from false to true answers exactly
//!   `Calico datastore upgrade from etcd to kdd successful`.
//! - Paged lists, at page sizes 1, 3, 10 and 1000: no page holds more than `limit` items; only
//!   the last page may be empty; following `next` from `None` until `None` yields every seeded
//!   item exactly once. Accounts and teams come in byte order of `name`, members in byte order of
//!   the user ID (`reference/mke3-api.md` §3); collections and grants in any order.
//! - A page of 10 with more items left has a `next`.
//! - Members and teams of an organisation that does not exist, and members of a team that does
//!   not exist, are [`Mke3Error::NotFound`]. An organisation without teams has an empty team
//!   list with no `next`.
//! - Names are passed verbatim: a team name with a space and one with dots, dashes and
//!   underscores work.
//! - `roles` returns every seeded role (any order).
//! - Reading everything through the trait gives back the seeded model.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_rbac::export::{
    Account, Collection, EXPORT_VERSION, Export, Grant, LabelConstraint, Member, OrgExport, Role,
    Team, TeamExport,
};

use ferry_flow_mke::mke3::{Mke3Api, Mke3Error, Page};

/// What a backend under test must serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Mke3Seed {
    pub export: Export,
    /// The MKE version `version()` must return, e.g. `3.7.15`.
    pub version: String,
    pub config_toml: String,
}

/// How the suite gets a backend.
#[async_trait::async_trait]
pub trait Mke3Setup: Send + Sync {
    /// A backend serving exactly `seed`, with no state left from an earlier call (every case
    /// starts one). `Err(text)` fails the case with that text.
    async fn start(&self, seed: &Mke3Seed) -> Result<Arc<dyn Mke3Api>, String>;
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: &'static str,
    pub outcome: Result<(), String>,
    pub elapsed: Duration,
}

/// The results of a whole run.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// Which suite (`Mke3Api`, `ClusterApi`).
    pub suite: &'static str,
    pub cases: Vec<CaseResult>,
}

impl SuiteReport {
    pub fn new(suite: &'static str) -> SuiteReport {
        SuiteReport {
            suite,
            cases: Vec::new(),
        }
    }

    /// Number of cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome.is_ok()).count()
    }

    /// The cases that failed.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| c.outcome.is_err()).collect()
    }

    /// Panics with every failure when any case failed.
    pub fn assert_all_passed(&self) {
        assert!(self.failures().is_empty(), "{self}");
    }

    /// Runs one case, timing it.
    pub async fn case<F>(&mut self, name: &'static str, body: F)
    where
        F: Future<Output = Result<(), String>>,
    {
        let started = Instant::now();
        let outcome = body.await;
        self.cases.push(CaseResult {
            name,
            outcome,
            elapsed: started.elapsed(),
        });
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cases {
            match &c.outcome {
                Ok(()) => writeln!(f, "ok      {} ({:.2?})", c.name, c.elapsed)?,
                Err(e) => writeln!(f, "FAILED  {} ({:.2?}): {e}", c.name, c.elapsed)?,
            }
        }
        write!(
            f,
            "{} conformance: {} of {} cases passed",
            self.suite,
            self.passed(),
            self.cases.len()
        )
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The page sizes every paged list is read with.
const PAGE_SIZES: [u32; 4] = [1, 3, 10, 1000];

/// The organisation with many members and teams.
pub const BIG_ORG: &str = "engineering";
/// An organisation without members or teams.
pub const EMPTY_ORG: &str = "empty-org";
/// A team whose name has a space.
pub const SPACED_TEAM: &str = "release managers";
/// A team whose name has dots, dashes and underscores.
pub const DOTTED_TEAM: &str = "ops.team-1_x";

/// The config TOML of the standard seed.
pub const SEED_TOML: &str = "[cluster_config]\n  calico_kdd = false\n  controller_port = 443\n";

/// The documented answer of the PUT that switches Calico to KDD.
pub const KDD_MESSAGE: &str = "Calico datastore upgrade from etcd to kdd successful";

fn account(name: &str, id: &str, is_org: bool) -> Account {
    Account {
        name: name.into(),
        id: id.into(),
        full_name: format!("{name} full name"),
        is_org,
        is_admin: false,
        is_active: true,
        is_imported: false,
        members_count: 0,
        teams_count: 0,
        on_demand: None,
        otp_enabled: None,
    }
}

/// The standard seed: 23 users (some inactive, two admins), three organisations (one with 15
/// members and 12 teams, one with a single team, one empty), 6 roles, 13 collections and 27
/// grants. Its lists are deliberately *not* in the served order.
pub fn standard_seed() -> Mke3Seed {
    let mut users: Vec<Account> = (0..23)
        .rev()
        .map(|i| {
            let mut a = account(&format!("user-{i:02}"), &format!("u{:03}", 100 - i), false);
            a.is_active = i % 7 != 3;
            a.is_admin = i == 0 || i == 11;
            a
        })
        .collect();
    users.push(account("admin", "u000", false));
    let orgs = vec![
        account(BIG_ORG, "o-eng", true),
        account("acme", "o-acme", true),
        account(EMPTY_ORG, "o-empty", true),
    ];
    let member = |a: &Account, admin: bool| Member {
        member: a.clone(),
        is_admin: admin,
    };
    let mut eng = OrgExport::default();
    for (i, u) in users.iter().enumerate().take(15) {
        eng.members.push(member(u, i % 5 == 0));
    }
    let mut team_names: Vec<String> = (0..10).map(|i| format!("team-{i:02}")).collect();
    team_names.push(SPACED_TEAM.into());
    team_names.push(DOTTED_TEAM.into());
    for (t, name) in team_names.iter().enumerate().rev() {
        let members: Vec<Member> = match t {
            0 => users.iter().take(11).map(|u| member(u, false)).collect(),
            1 => Vec::new(),
            _ => users
                .iter()
                .skip(t)
                .take(2)
                .map(|u| member(u, t == 10))
                .collect(),
        };
        eng.teams.push(TeamExport {
            team: Team {
                org_id: "o-eng".into(),
                name: name.clone(),
                id: format!("t-eng-{t:02}"),
                description: format!("team {name}"),
                members_count: members.len() as u64,
            },
            members,
        });
    }
    let mut acme = OrgExport::default();
    acme.members.push(member(&users[20], true));
    acme.teams.push(TeamExport {
        team: Team {
            org_id: "o-acme".into(),
            name: "team-00".into(),
            id: "t-acme-00".into(),
            description: String::new(),
            members_count: 1,
        },
        members: vec![member(&users[20], false)],
    });
    let mut org_map = BTreeMap::new();
    org_map.insert(BIG_ORG.to_string(), eng);
    org_map.insert("acme".to_string(), acme);
    org_map.insert(EMPTY_ORG.to_string(), OrgExport::default());

    let mut roles: Vec<Role> = [
        "viewonly",
        "scheduler",
        "restrictedcontrol",
        "none",
        "fullcontrol",
    ]
    .iter()
    .map(|id| Role {
        id: (*id).into(),
        name: (*id).into(),
        system_role: true,
        operations: serde_json::json!({}),
    })
    .collect();
    roles.push(Role {
        id: "r-developer".into(),
        name: "developer".into(),
        system_role: false,
        operations: serde_json::json!({"Container": {"Container Attach": [], "Container Logs": []}}),
    });
    let collections: Vec<Collection> = (0..13)
        .rev()
        .map(|i| Collection {
            id: format!("c{i:02}"),
            name: format!("coll{i}"),
            path: format!("/Shared/coll{i}"),
            parent_ids: vec!["shared".into()],
            label_constraints: vec![LabelConstraint {
                kind: "node".into(),
                label_key: "zone".into(),
                label_value: format!("z{i}"),
                equality: true,
            }],
            legacylabelkey: String::new(),
            legacylabelvalue: String::new(),
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-02T00:00:00Z".into(),
        })
        .collect();
    let mut grants = Vec::new();
    for i in 0..27usize {
        let subject_id = match i % 3 {
            0 => format!("u{:03}", 100 - (i % 23)),
            1 => format!("t-eng-{:02}", i % 12),
            _ => "o-eng".to_string(),
        };
        let (object_id, collection_path) = match i % 3 {
            0 => (
                format!("c{:02}", i % 13),
                Some(format!("/Shared/coll{}", i % 13)),
            ),
            1 => ("kubernetesnamespaces".to_string(), None),
            _ => (format!("ns-{i:02}"), None),
        };
        grants.push(Grant {
            subject_id,
            object_id,
            // Unique triples: team grants cycle through 12 teams and 5 roles.
            role_id: roles[if i % 3 == 1 { i % 5 } else { i % roles.len() }]
                .id
                .clone(),
            collection_path,
        });
    }
    let mut accounts = users;
    accounts.extend(orgs);
    Mke3Seed {
        export: Export {
            version: EXPORT_VERSION,
            accounts,
            orgs: org_map,
            roles,
            collections,
            grants,
        },
        version: "3.7.15".into(),
        config_toml: SEED_TOML.into(),
    }
}

/// Reads every page of one list at page size `limit`, checking the paging rules.
async fn read_all<T, F, Fut>(what: &str, limit: u32, mut fetch: F) -> Result<Vec<T>, String>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, Mke3Error>>,
{
    let mut items = Vec::new();
    let mut start: Option<String> = None;
    for n in 0.. {
        ensure!(
            n <= 10_000,
            "{what}: more than 10000 pages at limit {limit}"
        );
        let page = fetch(start.clone())
            .await
            .map_err(|e| format!("{what} (limit {limit}, start {start:?}): {e}"))?;
        ensure!(
            page.items.len() <= limit as usize,
            "{what}: a page of {} items at limit {limit}",
            page.items.len()
        );
        let last = page.next.is_none();
        ensure!(
            last || !page.items.is_empty(),
            "{what}: an empty page with a next marker {:?}",
            page.next
        );
        items.extend(page.items);
        match page.next {
            None => break,
            Some(next) => {
                ensure!(
                    start.as_deref() != Some(next.as_str()),
                    "{what}: the marker {next:?} does not advance"
                );
                start = Some(next);
            }
        }
    }
    Ok(items)
}

fn names(accounts: &[Account]) -> Vec<&str> {
    accounts.iter().map(|a| a.name.as_str()).collect()
}

fn member_ids(members: &[Member]) -> Vec<&str> {
    members.iter().map(|m| m.member.id.as_str()).collect()
}

fn sorted<T: Clone, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(|x| key(x));
    v
}

/// The seed in the order the suite expects from a backend (collections and grants sorted too,
/// for comparisons).
pub fn canonical(export: &Export) -> Export {
    let mut e = export.clone();
    e.accounts = sorted(&e.accounts, |a| a.name.clone());
    for org in e.orgs.values_mut() {
        org.members = sorted(&org.members, |m| m.member.id.clone());
        org.teams = sorted(&org.teams, |t| t.team.name.clone());
        for t in &mut org.teams {
            t.members = sorted(&t.members, |m| m.member.id.clone());
        }
    }
    e.roles = sorted(&e.roles, |r| r.id.clone());
    e.collections = sorted(&e.collections, |c| c.id.clone());
    e.grants.sort();
    e
}

async fn backend(setup: &dyn Mke3Setup, seed: &Mke3Seed) -> Result<Arc<dyn Mke3Api>, String> {
    setup
        .start(seed)
        .await
        .map_err(|e| format!("setup failed: {e}"))
}

async fn ping(api: Arc<dyn Mke3Api>) -> Result<(), String> {
    api.ping().await.map_err(|e| format!("ping: {e}"))
}

async fn version(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let v = api.version().await.map_err(|e| format!("version: {e}"))?;
    ensure!(
        v == seed.version,
        "version {v:?}, seeded {:?}",
        seed.version
    );
    Ok(())
}

async fn config_get(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let t = api
        .config_toml()
        .await
        .map_err(|e| format!("config_toml: {e}"))?;
    ensure!(
        t == seed.config_toml,
        "config_toml {t:?}, seeded {:?}",
        seed.config_toml
    );
    Ok(())
}

async fn config_put(api: Arc<dyn Mke3Api>) -> Result<(), String> {
    let new = SEED_TOML.replace("calico_kdd = false", "calico_kdd = true");
    let message = api
        .put_config_toml(&new)
        .await
        .map_err(|e| format!("put_config_toml: {e}"))?;
    ensure!(
        message == KDD_MESSAGE,
        "the KDD switch answered {message:?}, expected {KDD_MESSAGE:?}"
    );
    let back = api
        .config_toml()
        .await
        .map_err(|e| format!("config_toml after the PUT: {e}"))?;
    ensure!(back == new, "config_toml after the PUT is {back:?}");
    let again = api
        .put_config_toml(&new)
        .await
        .map_err(|e| format!("second put_config_toml: {e}"))?;
    ensure!(!again.is_empty(), "a PUT answered an empty message");
    Ok(())
}

async fn accounts_paging(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let expected = canonical(&seed.export).accounts;
    for limit in PAGE_SIZES {
        let got = read_all("accounts", limit, |s| {
            let api = api.clone();
            async move { api.accounts(s.as_deref(), limit).await }
        })
        .await?;
        ensure!(
            names(&got) == names(&expected),
            "accounts at limit {limit}: {:?}, expected {:?}",
            names(&got),
            names(&expected)
        );
        ensure!(got == expected, "accounts at limit {limit}: fields differ");
    }
    Ok(())
}

async fn accounts_first_page(api: Arc<dyn Mke3Api>) -> Result<(), String> {
    let page = api
        .accounts(None, 10)
        .await
        .map_err(|e| format!("accounts: {e}"))?;
    ensure!(
        page.items.len() == 10,
        "first page of 10 has {} items",
        page.items.len()
    );
    let next = page
        .next
        .ok_or("the first page of 10 (of 27 accounts) has no next marker")?;
    let second = api
        .accounts(Some(&next), 10)
        .await
        .map_err(|e| format!("accounts from {next:?}: {e}"))?;
    ensure!(
        second.items.first().map(|a| a.name.as_str()) > page.items.last().map(|a| a.name.as_str()),
        "the second page does not continue after the first"
    );
    Ok(())
}

async fn org_members_paging(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let canon = canonical(&seed.export);
    for (org, data) in &canon.orgs {
        for limit in PAGE_SIZES {
            let got = read_all(&format!("members of {org}"), limit, |s| {
                let api = api.clone();
                let org = org.clone();
                async move { api.org_members(&org, s.as_deref(), limit).await }
            })
            .await?;
            ensure!(
                member_ids(&got) == member_ids(&data.members),
                "members of {org} at limit {limit}: {:?}, expected {:?}",
                member_ids(&got),
                member_ids(&data.members)
            );
            ensure!(
                got == data.members,
                "members of {org} at limit {limit}: fields differ"
            );
        }
    }
    Ok(())
}

async fn teams_paging(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let canon = canonical(&seed.export);
    for (org, data) in &canon.orgs {
        let expected: Vec<Team> = data.teams.iter().map(|t| t.team.clone()).collect();
        for limit in PAGE_SIZES {
            let got = read_all(&format!("teams of {org}"), limit, |s| {
                let api = api.clone();
                let org = org.clone();
                async move { api.teams(&org, s.as_deref(), limit).await }
            })
            .await?;
            let got_names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
            let want: Vec<&str> = expected.iter().map(|t| t.name.as_str()).collect();
            ensure!(
                got_names == want,
                "teams of {org} at limit {limit}: {got_names:?}, expected {want:?}"
            );
            ensure!(
                got == expected,
                "teams of {org} at limit {limit}: fields differ"
            );
        }
    }
    Ok(())
}

async fn empty_org(api: Arc<dyn Mke3Api>) -> Result<(), String> {
    let page = api
        .teams(EMPTY_ORG, None, 10)
        .await
        .map_err(|e| format!("teams of {EMPTY_ORG}: {e}"))?;
    ensure!(
        page.items.is_empty() && page.next.is_none(),
        "teams of an empty org: {page:?}"
    );
    let page = api
        .org_members(EMPTY_ORG, None, 10)
        .await
        .map_err(|e| format!("members of {EMPTY_ORG}: {e}"))?;
    ensure!(
        page.items.is_empty() && page.next.is_none(),
        "members of an empty org: {page:?}"
    );
    Ok(())
}

async fn team_members_paging(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let canon = canonical(&seed.export);
    for (org, data) in &canon.orgs {
        for team in &data.teams {
            for limit in PAGE_SIZES {
                let what = format!("members of team {org}/{}", team.team.name);
                let got = read_all(&what, limit, |s| {
                    let api = api.clone();
                    let org = org.clone();
                    let name = team.team.name.clone();
                    async move { api.team_members(&org, &name, s.as_deref(), limit).await }
                })
                .await?;
                ensure!(
                    got == team.members,
                    "{what} at limit {limit}: {:?}, expected {:?}",
                    member_ids(&got),
                    member_ids(&team.members)
                );
            }
        }
    }
    Ok(())
}

async fn names_verbatim(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let canon = canonical(&seed.export);
    for name in [SPACED_TEAM, DOTTED_TEAM] {
        let expected = canon
            .orgs
            .get(BIG_ORG)
            .and_then(|o| o.teams.iter().find(|t| t.team.name == name))
            .ok_or(format!("the seed lacks team {name:?}"))?;
        let page = api
            .team_members(BIG_ORG, name, None, 100)
            .await
            .map_err(|e| format!("members of team {name:?}: {e}"))?;
        ensure!(
            page.items == expected.members,
            "members of team {name:?}: {:?}",
            member_ids(&page.items)
        );
    }
    Ok(())
}

fn expect_not_found<T: fmt::Debug>(what: &str, r: Result<T, Mke3Error>) -> Result<(), String> {
    match r {
        Err(Mke3Error::NotFound(_)) => Ok(()),
        other => Err(format!("{what}: expected NotFound, got {other:?}")),
    }
}

async fn not_found(api: Arc<dyn Mke3Api>) -> Result<(), String> {
    expect_not_found(
        "members of a missing org",
        api.org_members("no-such-org", None, 10).await,
    )?;
    expect_not_found(
        "teams of a missing org",
        api.teams("no-such-org", None, 10).await,
    )?;
    expect_not_found(
        "members of a missing team",
        api.team_members(BIG_ORG, "no-such-team", None, 10).await,
    )?;
    expect_not_found(
        "members of a team of a missing org",
        api.team_members("no-such-org", "team-00", None, 10).await,
    )?;
    Ok(())
}

async fn roles(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let got = api.roles().await.map_err(|e| format!("roles: {e}"))?;
    let got = sorted(&got, |r| r.id.clone());
    let want = canonical(&seed.export).roles;
    ensure!(got == want, "roles: {got:?}, expected {want:?}");
    Ok(())
}

async fn collections_paging(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let want = canonical(&seed.export).collections;
    for limit in PAGE_SIZES {
        let got = read_all("collections", limit, |s| {
            let api = api.clone();
            async move { api.collections(s.as_deref(), limit).await }
        })
        .await?;
        let got = sorted(&got, |c| c.id.clone());
        ensure!(
            got == want,
            "collections at limit {limit}: {:?}",
            got.iter().map(|c| &c.id).collect::<Vec<_>>()
        );
    }
    Ok(())
}

async fn grants_paging(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let want = canonical(&seed.export).grants;
    for limit in PAGE_SIZES {
        let mut got = read_all("grants", limit, |s| {
            let api = api.clone();
            async move { api.grants(s.as_deref(), limit).await }
        })
        .await?;
        got.sort();
        ensure!(
            got == want,
            "grants at limit {limit}: {} grants, expected {} (or fields differ)",
            got.len(),
            want.len()
        );
    }
    Ok(())
}

async fn round_trip(api: Arc<dyn Mke3Api>, seed: &Mke3Seed) -> Result<(), String> {
    let limit = 10;
    let accounts = read_all("accounts", limit, |s| {
        let api = api.clone();
        async move { api.accounts(s.as_deref(), limit).await }
    })
    .await?;
    let mut orgs = BTreeMap::new();
    for org in accounts.iter().filter(|a| a.is_org) {
        let name = org.name.clone();
        let members = read_all("members", limit, |s| {
            let (api, name) = (api.clone(), name.clone());
            async move { api.org_members(&name, s.as_deref(), limit).await }
        })
        .await?;
        let teams = read_all("teams", limit, |s| {
            let (api, name) = (api.clone(), name.clone());
            async move { api.teams(&name, s.as_deref(), limit).await }
        })
        .await?;
        let mut team_exports = Vec::new();
        for team in teams {
            let members = read_all("team members", limit, |s| {
                let (api, name, t) = (api.clone(), name.clone(), team.name.clone());
                async move { api.team_members(&name, &t, s.as_deref(), limit).await }
            })
            .await?;
            team_exports.push(TeamExport { team, members });
        }
        orgs.insert(
            name,
            OrgExport {
                members,
                teams: team_exports,
            },
        );
    }
    let roles = api.roles().await.map_err(|e| format!("roles: {e}"))?;
    let collections = read_all("collections", limit, |s| {
        let api = api.clone();
        async move { api.collections(s.as_deref(), limit).await }
    })
    .await?;
    let grants = read_all("grants", limit, |s| {
        let api = api.clone();
        async move { api.grants(s.as_deref(), limit).await }
    })
    .await?;
    let got = canonical(&Export {
        version: EXPORT_VERSION,
        accounts,
        orgs,
        roles,
        collections,
        grants,
    });
    let want = canonical(&seed.export);
    ensure!(
        got == want,
        "the model read back differs from the seed (accounts {} vs {}, orgs {} vs {}, grants {} vs {})",
        got.accounts.len(),
        want.accounts.len(),
        got.orgs.len(),
        want.orgs.len(),
        got.grants.len(),
        want.grants.len()
    );
    Ok(())
}

/// Runs every case against fresh backends from `setup` and reports each one.
pub async fn run_suite(setup: &dyn Mke3Setup) -> SuiteReport {
    let seed = standard_seed();
    let mut report = SuiteReport::new("Mke3Api");
    macro_rules! case {
        ($name:literal, |$api:ident| $body:expr) => {
            report
                .case($name, async {
                    let $api = backend(setup, &seed).await?;
                    $body.await
                })
                .await;
        };
    }
    case!("ping", |api| ping(api));
    case!("version", |api| version(api, &seed));
    case!("config.get", |api| config_get(api, &seed));
    case!("config.put-kdd-switch", |api| config_put(api));
    case!("accounts.every-page-size", |api| accounts_paging(
        api, &seed
    ));
    case!("accounts.first-page-of-10", |api| accounts_first_page(api));
    case!("org-members.every-page-size", |api| org_members_paging(
        api, &seed
    ));
    case!("teams.every-page-size", |api| teams_paging(api, &seed));
    case!("teams.empty-org", |api| empty_org(api));
    case!("team-members.every-page-size", |api| team_members_paging(
        api, &seed
    ));
    case!("names.verbatim", |api| names_verbatim(api, &seed));
    case!("errors.not-found", |api| not_found(api));
    case!("roles.all", |api| roles(api, &seed));
    case!("collections.every-page-size", |api| collections_paging(
        api, &seed
    ));
    case!("grants.every-page-size", |api| grants_paging(api, &seed));
    case!("export.round-trip", |api| round_trip(api, &seed));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_seed_has_what_the_cases_need() {
        let seed = standard_seed();
        let e = &seed.export;
        assert_eq!(e.accounts.len(), 27);
        assert!(e.orgs[BIG_ORG].teams.len() > 10);
        assert!(e.orgs[BIG_ORG].members.len() > 10);
        assert!(e.orgs[EMPTY_ORG].teams.is_empty());
        let mut grants = e.grants.clone();
        grants.sort();
        grants.dedup_by(|a, b| {
            (&a.subject_id, &a.object_id, &a.role_id) == (&b.subject_id, &b.object_id, &b.role_id)
        });
        assert_eq!(grants.len(), e.grants.len(), "grants must be unique");
        // Not already in the served order, so a backend that does not sort is caught.
        assert_ne!(canonical(e).accounts, e.accounts);
    }
}
