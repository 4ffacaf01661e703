//! The fake MKE 3 API: version, config TOML (and the PUT of the Calico KDD switch), accounts,
//! organisations, teams, members, roles, collections and grants, paged as MKE 3 pages them. It
//! answers only while `ucp-controller` runs on a manager with an etcd quorum, and only to a
//! client that logged in with the admin credentials.

use super::host::mke3_api_up;
use super::world::{Call, World};
use ferry_core::secret::Secret;
use ferry_flow_mke::mke3::{Mke3Api, Mke3Error, Page};
use ferry_rbac::export::{Account, Collection, Grant, Member, Role, Team};

/// A client of the fake MKE 3. Like the real client it logs in (`POST /auth/login`) when it
/// needs a token, so that a client made while MKE 3 is down works once it is back; wrong
/// credentials make every call fail with 401.
#[derive(Debug, Clone)]
pub struct FakeMke3 {
    world: World,
    user: String,
    password: Secret<String>,
}

impl FakeMke3 {
    pub fn new(world: &World, user: &str, password: Secret<String>) -> Self {
        Self {
            world: world.clone(),
            user: user.into(),
            password,
        }
    }

    /// A client whose credentials are checked at once (a login round trip).
    pub fn login(world: &World, user: &str, password: &Secret<String>) -> Result<Self, Mke3Error> {
        let me = Self::new(world, user, password.clone());
        me.call("login", vec![user.into()], false)?;
        Ok(me)
    }

    fn call(&self, op: &str, args: Vec<String>, mutating: bool) -> Result<(), Mke3Error> {
        self.world
            .record(Call {
                seq: 0,
                backend: "mke3",
                host: None,
                op: op.into(),
                args,
                sudo: false,
                data: None,
                mutating,
                step: None,
            })
            .map_err(|i| {
                if i.transient {
                    Mke3Error::Unavailable("injected fault: connection reset".into())
                } else {
                    Mke3Error::Forbidden(format!("injected fault: {op} refused"))
                }
            })?;
        let s = self.world.state();
        if !mke3_api_up(&s) {
            return Err(Mke3Error::Unavailable(
                "502 Bad Gateway: no MKE 3 controller answers".into(),
            ));
        }
        let ok = s.mke3.admin_user == self.user
            && s.mke3
                .admin_password
                .as_ref()
                .is_some_and(|p| p.expose() == self.password.expose());
        if ok {
            Ok(())
        } else {
            Err(Mke3Error::Unauthorized)
        }
    }
}

/// Pages `items` (sorted by `key`) from the item whose key is `start`.
fn page<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> String,
    start: Option<&str>,
    limit: u32,
) -> Page<T> {
    let limit = if limit == 0 { 10 } else { limit as usize };
    let from = match start {
        Some(s) if !s.is_empty() => items
            .iter()
            .position(|x| key(x) == s)
            .unwrap_or(items.len()),
        _ => 0,
    };
    let slice: Vec<T> = items.iter().skip(from).take(limit).cloned().collect();
    let next = items.get(from + limit).map(&key);
    Page { items: slice, next }
}

#[async_trait::async_trait]
impl Mke3Api for FakeMke3 {
    async fn ping(&self) -> Result<(), Mke3Error> {
        self.call("ping", vec![], false)
    }

    async fn version(&self) -> Result<String, Mke3Error> {
        self.call("version", vec![], false)?;
        Ok(self.world.state().mke3.version.clone())
    }

    async fn config_toml(&self) -> Result<String, Mke3Error> {
        self.call("config_toml", vec![], false)?;
        Ok(self.world.state().mke3.config_toml.clone())
    }

    async fn put_config_toml(&self, toml: &str) -> Result<String, Mke3Error> {
        self.call("put_config_toml", vec![], true)?;
        let mut s = self.world.state();
        let kdd = |t: &str| {
            t.lines()
                .map(|l| l.split('#').next().unwrap_or("").replace([' ', '\t'], ""))
                .any(|l| l == "calico_kdd=true")
        };
        let was_kdd = kdd(&s.mke3.config_toml);
        s.mke3.config_toml = toml.to_string();
        Ok(if !was_kdd && kdd(toml) {
            "Calico datastore upgrade from etcd to kdd successful".into()
        } else {
            "Configuration updated".into()
        })
    }

    async fn accounts(&self, start: Option<&str>, limit: u32) -> Result<Page<Account>, Mke3Error> {
        self.call("accounts", vec![], false)?;
        let mut v = self.world.state().mke3.accounts.clone();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(page(&v, |a| a.name.clone(), start, limit))
    }

    async fn org_members(
        &self,
        org: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Member>, Mke3Error> {
        self.call("org_members", vec![org.into()], false)?;
        let Some(mut v) = self.world.state().mke3.org_members.get(org).cloned() else {
            return Err(Mke3Error::NotFound(format!("account {org}")));
        };
        v.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        Ok(page(&v, |m| m.member.id.clone(), start, limit))
    }

    async fn teams(
        &self,
        org: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Team>, Mke3Error> {
        self.call("teams", vec![org.into()], false)?;
        let s = self.world.state();
        if !s.mke3.org_members.contains_key(org) {
            return Err(Mke3Error::NotFound(format!("account {org}")));
        }
        let mut v = s.mke3.teams.get(org).cloned().unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(page(&v, |t| t.name.clone(), start, limit))
    }

    async fn team_members(
        &self,
        org: &str,
        team: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Member>, Mke3Error> {
        self.call("team_members", vec![org.into(), team.into()], false)?;
        let Some(mut v) = self
            .world
            .state()
            .mke3
            .team_members
            .get(&(org.to_string(), team.to_string()))
            .cloned()
        else {
            return Err(Mke3Error::NotFound(format!("team {org}/{team}")));
        };
        v.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        Ok(page(&v, |m| m.member.id.clone(), start, limit))
    }

    async fn roles(&self) -> Result<Vec<Role>, Mke3Error> {
        self.call("roles", vec![], false)?;
        Ok(self.world.state().mke3.roles.clone())
    }

    async fn collections(
        &self,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Collection>, Mke3Error> {
        self.call("collections", vec![], false)?;
        let v = self.world.state().mke3.collections.clone();
        Ok(page(&v, |c| c.id.clone(), start, limit))
    }

    async fn grants(&self, start: Option<&str>, limit: u32) -> Result<Page<Grant>, Mke3Error> {
        self.call("grants", vec![], false)?;
        let v = self.world.state().mke3.grants.clone();
        let indexed: Vec<(usize, Grant)> = v.into_iter().enumerate().collect();
        let p = page(&indexed, |(i, _)| i.to_string(), start, limit);
        Ok(Page {
            items: p.items.into_iter().map(|(_, g)| g).collect(),
            next: p.next,
        })
    }
}

/// The conformance suite's setup: a world holding only the seeded MKE 3, always up.
#[derive(Debug, Default)]
pub struct FakeMke3Setup;

#[async_trait::async_trait]
impl crate::conformance::mke3::Mke3Setup for FakeMke3Setup {
    async fn start(
        &self,
        seed: &crate::conformance::mke3::Mke3Seed,
    ) -> Result<std::sync::Arc<dyn Mke3Api>, String> {
        let e = &seed.export;
        let mut m = super::world::Mke3State {
            version: seed.version.clone(),
            config_toml: seed.config_toml.clone(),
            accounts: e.accounts.clone(),
            roles: e.roles.clone(),
            collections: e.collections.clone(),
            grants: e.grants.clone(),
            admin_user: "admin".into(),
            admin_password: Some(Secret::new("conformance".into())),
            always_up: true,
            ..Default::default()
        };
        for a in e.accounts.iter().filter(|a| a.is_org) {
            m.org_members.entry(a.name.clone()).or_default();
            m.teams.entry(a.name.clone()).or_default();
        }
        for (org, o) in &e.orgs {
            m.org_members.insert(org.clone(), o.members.clone());
            m.teams.insert(
                org.clone(),
                o.teams.iter().map(|t| t.team.clone()).collect(),
            );
            for t in &o.teams {
                m.team_members
                    .insert((org.clone(), t.team.name.clone()), t.members.clone());
            }
        }
        let world = World::new(super::world::WorldState {
            mke3: m,
            ..Default::default()
        });
        Ok(std::sync::Arc::new(FakeMke3::new(
            &world,
            "admin",
            Secret::new("conformance".into()),
        )))
    }
}
