//! The translation itself (`rbac-mapping.md` sections 3 to 5): an [`Export`] in, RBAC
//! [`Manifests`] and a [`Report`] out.
//!
//! The work happens in four passes, so that names, which depend on every subject at once, are
//! chosen before any object is built:
//! 1. index accounts, roles, organisations, teams and memberships (deduplicated, sorted);
//! 2. classify every grant and collect, per subject, the roles it holds cluster-wide and per
//!    namespace;
//! 3. name every role replica and every subject that gets objects, in one collision domain;
//! 4. build the objects and fill in what each grant became.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::RbacError;
use crate::export::{Account, Export, Grant, Member, Role, Team};
use crate::k8s::{
    API_VERSION, AggregationRule, ClusterRole, ClusterRoleBinding, LabelSelector, Manifests,
    ObjectMeta, RoleBinding, RoleRef, Subject, Text,
};
use crate::names::{self, NameOutcome, NameRequest};
use crate::report::{GrantClass, GrantOutcome, GrantRecord, Note, NoteKind, Report};

/// The `objectID` of grants "against all Kubernetes namespaces" (`type=grantobject`).
pub const ALL_NAMESPACES_OBJECT: &str = "kubernetesnamespaces";

/// IDs of MKE 3's built-in roles. Their replicas keep these names and nothing else may use them.
pub const BUILTIN_ROLE_IDS: [&str; 5] = [
    "none",
    "viewonly",
    "restrictedcontrol",
    "scheduler",
    "fullcontrol",
];

/// The placeholder role every aggregated role without a role selects.
pub const PLACEHOLDER_ROLE: &str = "none";

/// Name of the ClusterRoleBinding of MKE 3 system administrators to `cluster-admin`.
pub const ADMINS_BINDING: &str = "mke3-admins";

/// Names of the target's own roles (and ferry's admin binding) that generated objects never take.
pub const RESERVED_NAMES: [&str; 5] = ["cluster-admin", "admin", "edit", "view", ADMINS_BINDING];

/// Reason recorded for Swarm collection grants (documented wording).
pub const SWARM_REASON: &str = "Swarm collection grant; no Kubernetes equivalent";

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const L_SOURCE: &str = "ferry.io/source";
const L_KIND: &str = "ferry.io/kind";
const L_ROLE: &str = "ferry.io/role";
const L_ORG: &str = "ferry.io/org";
const L_TEAM: &str = "ferry.io/team";
const L_SCOPE: &str = "ferry.io/scope";
const L_NAMESPACE: &str = "ferry.io/namespace";
const A_ID: &str = "ferry.io/mke3-id";
const A_NAME: &str = "ferry.io/mke3-name";
const A_ORG: &str = "ferry.io/mke3-org";
const A_COLLECTIONS: &str = "ferry.io/mke3-collection-grants";

const SA_PREFIX: &str = "system:serviceaccount:";
const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// What is known about the target cluster, when it is reachable. Both checks are optional.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespaces that exist in the target. When set, grants on other namespaces are not
    /// converted (`namespace <N> does not exist`).
    pub existing_namespaces: Option<BTreeSet<String>>,
    /// ClusterRoles of the target not managed by ferry: generated objects never take these names.
    pub foreign_cluster_roles: BTreeSet<String>,
}

/// The result of a translation.
#[derive(Debug, Clone)]
pub struct Translation {
    pub manifests: Manifests,
    pub report: Report,
}

impl Translation {
    /// The manifests as one YAML stream.
    pub fn to_yaml(&self) -> Result<String, RbacError> {
        crate::emit::to_yaml(&self.manifests)
    }
}

/// A grant subject that can get objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum SubjectKey {
    Org(usize),
    Team(usize),
    User(usize),
    ServiceAccount { namespace: String, name: String },
    AuthenticatedGroup,
}

enum ResolvedSubject {
    Known(SubjectKey),
    /// A special subject type that is deliberately not converted.
    NotConverted(&'static str),
    Unknown,
}

struct OrgInfo<'a> {
    account: &'a Account,
    /// Active members of the organisation and of all its teams.
    members: BTreeSet<&'a str>,
}

struct TeamInfo<'a> {
    org: usize,
    team: &'a Team,
    /// Active team members.
    members: BTreeSet<&'a str>,
}

/// The roles one subject holds.
#[derive(Default)]
struct Held {
    /// Role IDs granted on all namespaces.
    cluster: BTreeSet<String>,
    /// Namespace -> role IDs granted there.
    namespaces: BTreeMap<String, BTreeSet<String>>,
    /// Unconverted Swarm collection grants: (path, role ID).
    collections: BTreeSet<(String, String)>,
    /// At least one grant was converted.
    converted: bool,
}

/// A converted grant whose `detail` can only be written once names are known.
enum Pending {
    AllNamespaces {
        subject: SubjectKey,
        role: String,
    },
    Namespace {
        subject: SubjectKey,
        namespace: String,
        role: String,
    },
}

/// Who asked for a name.
#[derive(Debug, Clone)]
enum Owner {
    Role(usize),
    Subject(SubjectKey),
}

struct Model<'a> {
    users: Vec<&'a Account>,
    user_by_id: HashMap<&'a str, usize>,
    user_by_name: HashMap<&'a str, usize>,
    orgs: Vec<OrgInfo<'a>>,
    org_by_id: HashMap<&'a str, usize>,
    teams: Vec<TeamInfo<'a>>,
    team_by_id: HashMap<&'a str, usize>,
    roles: Vec<&'a Role>,
    role_by_id: HashMap<&'a str, usize>,
    collection_paths: HashMap<&'a str, &'a str>,
    notes: Vec<Note>,
    untranslated: usize,
}

/// Translates an export into RBAC manifests and a report. Fails only on an unsupported export
/// version; every other finding is a note in the report.
pub fn translate(export: &Export, options: &Options) -> Result<Translation, RbacError> {
    export.check_version()?;
    let mut model = Model::index(export);
    let mut records: Vec<GrantRecord> = Vec::new();
    let mut pending: Vec<(usize, Pending)> = Vec::new();
    let mut held: BTreeMap<SubjectKey, Held> = BTreeMap::new();
    model.classify_grants(export, options, &mut records, &mut pending, &mut held);

    let (owners, outcomes) = model.name_everything(&held, options);
    let mut role_names: HashMap<usize, String> = HashMap::new();
    let mut subject_names: HashMap<SubjectKey, String> = HashMap::new();
    let mut subject_stems: HashMap<SubjectKey, String> = HashMap::new();
    for (owner, (request, outcome)) in owners.iter().zip(&outcomes) {
        match owner {
            Owner::Role(i) => {
                role_names.insert(*i, outcome.name.clone());
            }
            Owner::Subject(k) => {
                subject_names.insert(k.clone(), outcome.name.clone());
                subject_stems.insert(k.clone(), outcome.stem(request).to_string());
            }
        }
    }
    // Built-in replicas keep their IDs as names.
    for (i, role) in model.roles.iter().enumerate() {
        if is_fixed(role) {
            role_names.insert(i, role.id.clone());
        }
    }
    let replica_of = |role_id: &str| -> String {
        model
            .role_by_id
            .get(role_id)
            .and_then(|i| role_names.get(i))
            .cloned()
            .unwrap_or_else(|| PLACEHOLDER_ROLE.to_string())
    };

    for (index, p) in pending {
        let detail = match &p {
            Pending::AllNamespaces { subject, role } => {
                let s = subject_names.get(subject).map(String::as_str).unwrap_or("");
                format!("ClusterRole {s} selects {}", replica_of(role))
            }
            Pending::Namespace {
                subject,
                namespace,
                role,
            } => {
                let s = subject_names.get(subject).map(String::as_str).unwrap_or("");
                format!(
                    "ClusterRole {s}.{namespace} selects {}; RoleBinding {s} in namespace \
                     {namespace}",
                    replica_of(role)
                )
            }
        };
        if let Some(record) = records.get_mut(index) {
            record.detail = detail;
        }
    }

    let mut manifests = Manifests::default();
    model.build_replicas(&role_names, &mut manifests);
    for (key, name) in &subject_names {
        let empty = Held::default();
        let h = held.get(key).unwrap_or(&empty);
        model.build_subject(key, name, &subject_stems, h, &replica_of, &mut manifests);
    }
    model.build_admins(&mut manifests);
    manifests.normalize();

    let mut report = Report {
        users: model.users.len(),
        organizations: model.orgs.len(),
        teams: model.teams.len(),
        untranslated_orgs_and_teams: model.untranslated,
        grants: records,
        notes: std::mem::take(&mut model.notes),
    };
    report.sort();
    Ok(Translation { manifests, report })
}

fn is_fixed(role: &Role) -> bool {
    role.system_role && BUILTIN_ROLE_IDS.contains(&role.id.as_str())
}

/// Sort key of an account: every field ferry reads, so that which of two differing duplicates is
/// kept never depends on the input order.
fn account_key(a: &Account) -> (&str, &str, bool, bool, bool, &str) {
    (
        &a.id,
        &a.name,
        a.is_org,
        a.is_admin,
        a.is_active,
        &a.full_name,
    )
}

impl<'a> Model<'a> {
    fn index(export: &'a Export) -> Self {
        let mut notes = Vec::new();

        // Accounts, deduplicated by ID. Pages of a list that changed while it was read can
        // overlap; sorting first makes the kept entry independent of the input order.
        let mut accounts: Vec<&Account> = export.accounts.iter().collect();
        accounts.sort_by(|a, b| account_key(a).cmp(&account_key(b)));
        let mut seen: HashMap<&str, &Account> = HashMap::with_capacity(accounts.len());
        let mut unique: Vec<&Account> = Vec::with_capacity(accounts.len());
        for a in accounts {
            match seen.get(a.id.as_str()) {
                Some(prev) if *prev == a => {}
                Some(prev) => notes.push(Note::new(
                    NoteKind::Duplicate,
                    format!(
                        "account ID {} is listed more than once with different contents; the \
                         entry named {} (full name {:?}) is used",
                        a.id, prev.name, prev.full_name
                    ),
                )),
                None => {
                    seen.insert(a.id.as_str(), a);
                    unique.push(a);
                }
            }
        }
        unique.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));

        let mut users = Vec::new();
        let mut user_by_id = HashMap::new();
        let mut user_by_name = HashMap::new();
        let mut orgs = Vec::new();
        let mut org_by_id = HashMap::new();
        let mut org_by_name: HashMap<&str, usize> = HashMap::new();
        for a in unique {
            let (by_name, kind) = if a.is_org {
                (&mut org_by_name, "organisation")
            } else {
                (&mut user_by_name, "user")
            };
            if by_name.contains_key(a.name.as_str()) {
                notes.push(Note::new(
                    NoteKind::Duplicate,
                    format!(
                        "{kind} name {} is used by more than one account ID; ID {} is ignored",
                        a.name, a.id
                    ),
                ));
                continue;
            }
            if a.is_org {
                org_by_name.insert(a.name.as_str(), orgs.len());
                org_by_id.insert(a.id.as_str(), orgs.len());
                orgs.push(OrgInfo {
                    account: a,
                    members: BTreeSet::new(),
                });
            } else {
                if !a.is_active {
                    notes.push(Note::new(
                        NoteKind::InactiveUser,
                        if a.is_admin {
                            format!(
                                "{} (a system admin) is inactive and left out of every binding, \
                                 {ADMINS_BINDING} included",
                                a.name
                            )
                        } else {
                            format!("{} is inactive and left out of every binding", a.name)
                        },
                    ));
                }
                user_by_name.insert(a.name.as_str(), users.len());
                user_by_id.insert(a.id.as_str(), users.len());
                users.push(a);
            }
        }

        // Roles, deduplicated by ID.
        let mut roles: Vec<&Role> = export.roles.iter().collect();
        roles.sort_by(|a, b| (&a.id, &a.name, a.system_role).cmp(&(&b.id, &b.name, b.system_role)));
        let mut role_by_id = HashMap::new();
        let mut unique_roles = Vec::with_capacity(roles.len());
        for r in roles {
            if role_by_id.contains_key(r.id.as_str()) {
                notes.push(Note::new(
                    NoteKind::Duplicate,
                    format!(
                        "role ID {} is listed more than once; the first is used",
                        r.id
                    ),
                ));
                continue;
            }
            role_by_id.insert(r.id.as_str(), unique_roles.len());
            unique_roles.push(r);
        }

        let collection_paths = export
            .collections
            .iter()
            .map(|c| (c.id.as_str(), c.path.as_str()))
            .collect();

        let mut model = Model {
            users,
            user_by_id,
            user_by_name,
            orgs,
            org_by_id,
            teams: Vec::new(),
            team_by_id: HashMap::new(),
            roles: unique_roles,
            role_by_id,
            collection_paths,
            notes,
            untranslated: 0,
        };

        // Organisations, teams and memberships. `orgs` is a BTreeMap, so this runs in name order.
        for (org_name, org_export) in &export.orgs {
            let Some(&o) = org_by_name.get(org_name.as_str()) else {
                model.notes.push(Note::new(
                    NoteKind::Dangling,
                    format!(
                        "organisation {org_name} of the orgs list is not an organisation account; \
                         it and its teams ({}) are left out",
                        org_export.teams.len()
                    ),
                ));
                model.untranslated += 1 + org_export.teams.len();
                continue;
            };
            for m in &org_export.members {
                if let Some(name) =
                    model.member(m, &format!("organisation {org_name}"), "organisation")
                {
                    model.orgs[o].members.insert(name);
                }
            }
            let mut teams: Vec<_> = org_export.teams.iter().collect();
            teams.sort_by(|a, b| (&a.team.id, &a.team.name).cmp(&(&b.team.id, &b.team.name)));
            let mut names_in_org: BTreeSet<&str> = BTreeSet::new();
            for t in teams {
                let team = &t.team;
                if model.team_by_id.contains_key(team.id.as_str()) {
                    model.notes.push(Note::new(
                        NoteKind::Duplicate,
                        format!(
                            "team ID {} ({org_name}/{}) is listed more than once; the first is \
                             used",
                            team.id, team.name
                        ),
                    ));
                    continue;
                }
                if !names_in_org.insert(team.name.as_str()) {
                    model.notes.push(Note::new(
                        NoteKind::Duplicate,
                        format!(
                            "team name {org_name}/{} is used by more than one team ID",
                            team.name
                        ),
                    ));
                }
                let org_id = &model.orgs[o].account.id;
                if !team.org_id.is_empty() && &team.org_id != org_id {
                    model.notes.push(Note::new(
                        NoteKind::Dangling,
                        format!(
                            "team {org_name}/{} has orgID {}, not the ID of {org_name} ({org_id}); \
                             it is kept in {org_name}, where the export lists it",
                            team.name, team.org_id
                        ),
                    ));
                }
                let where_ = format!("team {org_name}/{}", team.name);
                let mut members = BTreeSet::new();
                for m in &t.members {
                    if let Some(name) = model.member(m, &where_, "team") {
                        members.insert(name);
                    }
                }
                // A role given to the organisation applies to every member of its teams.
                model.orgs[o].members.extend(members.iter().copied());
                model.team_by_id.insert(team.id.as_str(), model.teams.len());
                model.teams.push(TeamInfo {
                    org: o,
                    team,
                    members,
                });
            }
        }
        model
    }

    /// Resolves one membership entry to an active user's name, reporting what is dropped.
    fn member(&mut self, m: &'a Member, where_: &str, level: &str) -> Option<&'a str> {
        let found = self
            .user_by_id
            .get(m.member.id.as_str())
            .or_else(|| self.user_by_name.get(m.member.name.as_str()))
            .copied();
        let Some(u) = found else {
            self.notes.push(Note::new(
                NoteKind::Dangling,
                format!(
                    "member {} (ID {}) of {where_} is not a user account of the export; left out",
                    m.member.name, m.member.id
                ),
            ));
            return None;
        };
        let user = self.users[u];
        if m.is_admin {
            self.notes.push(Note::new(
                NoteKind::MembershipAdmin,
                format!("{level} admin flag of {} in {where_} dropped", user.name),
            ));
        }
        user.is_active.then_some(user.name.as_str())
    }

    fn resolve_subject(&self, id: &str) -> ResolvedSubject {
        if let Some(&u) = self.user_by_id.get(id) {
            return ResolvedSubject::Known(SubjectKey::User(u));
        }
        if let Some(&o) = self.org_by_id.get(id) {
            return ResolvedSubject::Known(SubjectKey::Org(o));
        }
        if let Some(&t) = self.team_by_id.get(id) {
            return ResolvedSubject::Known(SubjectKey::Team(t));
        }
        if let Some((namespace, name)) = id
            .strip_prefix(SA_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        {
            if names::is_dns1123_label(namespace) && names::is_dns1123_subdomain(name) {
                return ResolvedSubject::Known(SubjectKey::ServiceAccount {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                });
            }
            return ResolvedSubject::Unknown;
        }
        match id {
            "authenticated" | AUTHENTICATED_GROUP => {
                ResolvedSubject::Known(SubjectKey::AuthenticatedGroup)
            }
            "anonymous" | "system:anonymous" => ResolvedSubject::NotConverted("anonymous"),
            "agent" => ResolvedSubject::NotConverted("agent"),
            _ => ResolvedSubject::Unknown,
        }
    }

    fn subject_display(&self, key: &SubjectKey) -> String {
        match key {
            SubjectKey::Org(o) => format!("org {}", self.orgs[*o].account.name),
            SubjectKey::Team(t) => {
                let team = &self.teams[*t];
                format!(
                    "team {}/{}",
                    self.orgs[team.org].account.name, team.team.name
                )
            }
            SubjectKey::User(u) => format!("user {}", self.users[*u].name),
            SubjectKey::ServiceAccount { namespace, name } => {
                format!("serviceaccount {namespace}/{name}")
            }
            SubjectKey::AuthenticatedGroup => format!("group {AUTHENTICATED_GROUP}"),
        }
    }

    fn classify_grants(
        &mut self,
        export: &'a Export,
        options: &Options,
        records: &mut Vec<GrantRecord>,
        pending: &mut Vec<(usize, Pending)>,
        held: &mut BTreeMap<SubjectKey, Held>,
    ) {
        let mut grants: Vec<&Grant> = export.grants.iter().collect();
        grants.sort();
        let total = grants.len();
        grants.dedup();
        if grants.len() < total {
            self.notes.push(Note::new(
                NoteKind::Duplicate,
                format!(
                    "grants listed more than once: {} extra entries ignored",
                    total - grants.len()
                ),
            ));
        }
        let mut unknown_subjects = BTreeSet::new();
        let mut unknown_roles = BTreeSet::new();
        let mut special_subjects = BTreeSet::new();

        for g in grants {
            let mut record = GrantRecord {
                subject: g.subject_id.clone(),
                role: g.role_id.clone(),
                object: g.object_id.clone(),
                path: None,
                class: GrantClass::Unclassified,
                outcome: GrantOutcome::NotConvertedOther,
                detail: String::new(),
            };
            let key = match self.resolve_subject(&g.subject_id) {
                ResolvedSubject::Known(key) => key,
                ResolvedSubject::NotConverted(kind) => {
                    record.detail = format!("subject type {kind} is not converted");
                    special_subjects.insert((kind, g.subject_id.as_str()));
                    records.push(record);
                    continue;
                }
                ResolvedSubject::Unknown => {
                    record.detail = format!("unknown subject {}", g.subject_id);
                    unknown_subjects.insert(g.subject_id.as_str());
                    records.push(record);
                    continue;
                }
            };
            record.subject = self.subject_display(&key);
            if !self.role_by_id.contains_key(g.role_id.as_str()) {
                record.detail = format!("unknown role {}", g.role_id);
                unknown_roles.insert(g.role_id.as_str());
                records.push(record);
                continue;
            }

            // Classification by objectID (inferred, see rbac-mapping.md section 4). A grant that
            // carries a collection path is a collection grant even if the collection list
            // missed it: reading it as a namespace would give access MKE 3 never gave.
            let listed = self.collection_paths.get(g.object_id.as_str()).copied();
            let carried = g.collection_path.as_deref().filter(|p| !p.is_empty());
            if listed.is_some() || carried.is_some() {
                let path = carried
                    .or(listed.filter(|p| !p.is_empty()))
                    .unwrap_or(&g.object_id)
                    .to_string();
                held.entry(key)
                    .or_default()
                    .collections
                    .insert((path.clone(), g.role_id.clone()));
                record.path = Some(path);
                record.class = GrantClass::SwarmCollection;
                record.outcome = GrantOutcome::NotConvertedSwarm;
                record.detail = SWARM_REASON.to_string();
                records.push(record);
                continue;
            }

            let namespace = if g.object_id == ALL_NAMESPACES_OBJECT {
                record.class = GrantClass::AllNamespaces;
                None
            } else if names::is_dns1123_label(&g.object_id) {
                record.class = GrantClass::Namespace;
                Some(g.object_id.as_str())
            } else {
                record.detail = format!(
                    "object {} is neither a known collection nor a valid namespace name",
                    g.object_id
                );
                records.push(record);
                continue;
            };
            if let SubjectKey::User(u) = key {
                if !self.users[u].is_active {
                    record.detail = format!("user {} is inactive", self.users[u].name);
                    records.push(record);
                    continue;
                }
            }
            if let (Some(ns), Some(existing)) = (namespace, &options.existing_namespaces) {
                if !existing.contains(ns) {
                    record.detail = format!("namespace {ns} does not exist");
                    records.push(record);
                    continue;
                }
            }

            let h = held.entry(key.clone()).or_default();
            h.converted = true;
            let p = match namespace {
                None => {
                    h.cluster.insert(g.role_id.clone());
                    Pending::AllNamespaces {
                        subject: key,
                        role: g.role_id.clone(),
                    }
                }
                Some(ns) => {
                    h.namespaces
                        .entry(ns.to_string())
                        .or_default()
                        .insert(g.role_id.clone());
                    Pending::Namespace {
                        subject: key,
                        namespace: ns.to_string(),
                        role: g.role_id.clone(),
                    }
                }
            };
            record.outcome = GrantOutcome::Converted;
            pending.push((records.len(), p));
            records.push(record);
        }

        for id in unknown_subjects {
            self.notes.push(Note::new(
                NoteKind::Dangling,
                format!(
                    "grant subject {id} is not an account, team, service account or known group"
                ),
            ));
        }
        for id in unknown_roles {
            self.notes.push(Note::new(
                NoteKind::Dangling,
                format!("grant role {id} is not in the roles list"),
            ));
        }
        for (kind, id) in special_subjects {
            self.notes.push(Note::new(
                NoteKind::SubjectNotConverted,
                format!("grants to {id} are not converted (subject type {kind})"),
            ));
        }
    }

    /// One collision domain for every generated ClusterRole name (section 5).
    fn name_everything(
        &mut self,
        held: &BTreeMap<SubjectKey, Held>,
        options: &Options,
    ) -> (Vec<Owner>, Vec<(NameRequest, NameOutcome)>) {
        let mut owners = Vec::new();
        let mut requests = Vec::new();
        for (i, role) in self.roles.iter().enumerate() {
            if is_fixed(role) {
                continue;
            }
            // A built-in role with an unexpected ID is named after its ID, a custom role after
            // its name.
            let original = if role.system_role {
                &role.id
            } else {
                &role.name
            };
            owners.push(Owner::Role(i));
            requests.push(NameRequest::new(
                format!("role:{}", role.id),
                original.as_str(),
                "",
            ));
        }
        for (o, org) in self.orgs.iter().enumerate() {
            owners.push(Owner::Subject(SubjectKey::Org(o)));
            let name = &org.account.name;
            requests.push(NameRequest::new(
                format!("org:{name}"),
                name.as_str(),
                "-org",
            ));
        }
        for (t, team) in self.teams.iter().enumerate() {
            owners.push(Owner::Subject(SubjectKey::Team(t)));
            let org = &self.orgs[team.org].account.name;
            let name = &team.team.name;
            requests.push(NameRequest::new(
                format!("team:{org}/{name}"),
                name.as_str(),
                "-team",
            ));
        }
        for (key, h) in held {
            if !h.converted {
                continue;
            }
            let request = match key {
                SubjectKey::Org(_) | SubjectKey::Team(_) => continue,
                SubjectKey::User(u) => {
                    let name = &self.users[*u].name;
                    NameRequest::new(format!("user:{name}"), name.as_str(), "-user")
                }
                SubjectKey::ServiceAccount { namespace, name } => NameRequest::new(
                    format!("sa:{namespace}/{name}"),
                    format!("{namespace}-{name}"),
                    "-sa",
                ),
                SubjectKey::AuthenticatedGroup => NameRequest::new(
                    format!("group:{AUTHENTICATED_GROUP}"),
                    "system-authenticated",
                    "-group",
                ),
            };
            owners.push(Owner::Subject(key.clone()));
            requests.push(request);
        }

        let mut reserved: BTreeSet<String> = RESERVED_NAMES
            .iter()
            .chain(BUILTIN_ROLE_IDS.iter())
            .map(|s| s.to_string())
            .collect();
        reserved.extend(options.foreign_cluster_roles.iter().cloned());
        let outcomes = names::sanitize_unique(&requests, &reserved);

        let whats: Vec<String> = owners
            .iter()
            .map(|owner| match owner {
                Owner::Role(i) => {
                    let role = self.roles[*i];
                    format!("role {} (ID {})", role.name, role.id)
                }
                Owner::Subject(k) => self.subject_display(k),
            })
            .collect();
        let plains: Vec<String> = requests
            .iter()
            .map(|r| names::sanitize(&r.original, &r.suffix))
            .collect();
        let mut wanted_by: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, plain) in plains.iter().enumerate() {
            wanted_by.entry(plain.as_str()).or_default().push(i);
        }
        for (i, (request, outcome)) in requests.iter().zip(&outcomes).enumerate() {
            let (what, plain) = (&whats[i], &plains[i]);
            if outcome.renamed {
                let mut others: Vec<&str> = wanted_by
                    .get(plain.as_str())
                    .map(|v| {
                        v.iter()
                            .filter(|&&j| j != i)
                            .map(|&j| whats[j].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                others.sort_unstable();
                let why = if others.is_empty() {
                    format!("{plain} is a reserved name")
                } else if others.len() <= 3 {
                    format!("{plain} is also wanted by {}", others.join(", "))
                } else {
                    format!(
                        "{plain} is also wanted by {} and {} more",
                        others[..3].join(", "),
                        others.len() - 3
                    )
                };
                self.notes.push(Note::new(
                    NoteKind::Rename,
                    format!(
                        "{what}: {} ({why}; original name {:?})",
                        outcome.name, request.original
                    ),
                ));
            } else if outcome.lossy {
                self.notes.push(Note::new(
                    NoteKind::Sanitized,
                    format!(
                        "{what}: {} (original name {:?})",
                        outcome.name, request.original
                    ),
                ));
            }
        }
        (owners, requests.into_iter().zip(outcomes).collect())
    }

    fn build_replicas(&self, role_names: &HashMap<usize, String>, m: &mut Manifests) {
        let mut has_placeholder = false;
        for (i, role) in self.roles.iter().enumerate() {
            let Some(name) = role_names.get(&i) else {
                continue;
            };
            has_placeholder |= name == PLACEHOLDER_ROLE;
            m.cluster_roles.push(replica(name, &role.id, &role.name));
        }
        if !has_placeholder {
            // "Kubernetes requires each aggregated role to have at least one role" [MKE].
            m.cluster_roles
                .push(replica(PLACEHOLDER_ROLE, PLACEHOLDER_ROLE, "None"));
        }
    }

    fn build_subject(
        &self,
        key: &SubjectKey,
        name: &str,
        stems: &HashMap<SubjectKey, String>,
        held: &Held,
        replica_of: &dyn Fn(&str) -> String,
        m: &mut Manifests,
    ) {
        let mut labels = base_labels();
        let mut annotations: BTreeMap<Text, Text> = BTreeMap::new();
        // `ferry.io/org` and `ferry.io/team` hold the final, unique stems (hash included when a
        // name was renamed), so that a label selector finds one organisation's or one team's
        // objects even when two sanitise to the same stem.
        let subjects: Vec<Subject> = match key {
            SubjectKey::Org(o) => {
                let org = &self.orgs[*o];
                labels.insert(L_KIND.into(), "org".into());
                labels.insert(L_ORG.into(), stem_of(stems, key).into());
                annotations.insert(A_ID.into(), org.account.id.clone().into());
                annotations.insert(A_NAME.into(), org.account.name.clone().into());
                org.members.iter().map(|u| Subject::user(u)).collect()
            }
            SubjectKey::Team(t) => {
                let team = &self.teams[*t];
                let org = &self.orgs[team.org];
                labels.insert(L_KIND.into(), "team".into());
                labels.insert(
                    L_ORG.into(),
                    stem_of(stems, &SubjectKey::Org(team.org)).into(),
                );
                labels.insert(L_TEAM.into(), stem_of(stems, key).into());
                annotations.insert(A_ID.into(), team.team.id.clone().into());
                annotations.insert(A_NAME.into(), team.team.name.clone().into());
                annotations.insert(A_ORG.into(), org.account.name.clone().into());
                team.members.iter().map(|u| Subject::user(u)).collect()
            }
            SubjectKey::User(u) => {
                let user = self.users[*u];
                labels.insert(L_KIND.into(), "user".into());
                annotations.insert(A_ID.into(), user.id.clone().into());
                annotations.insert(A_NAME.into(), user.name.clone().into());
                if user.is_active {
                    vec![Subject::user(&user.name)]
                } else {
                    Vec::new()
                }
            }
            SubjectKey::ServiceAccount { namespace, name } => {
                let id = format!("{SA_PREFIX}{namespace}:{name}");
                labels.insert(L_KIND.into(), "serviceaccount".into());
                annotations.insert(A_ID.into(), id.clone().into());
                annotations.insert(A_NAME.into(), id.into());
                vec![Subject::service_account(namespace, name)]
            }
            SubjectKey::AuthenticatedGroup => {
                labels.insert(L_KIND.into(), "group".into());
                annotations.insert(A_ID.into(), "authenticated".into());
                annotations.insert(A_NAME.into(), AUTHENTICATED_GROUP.into());
                vec![Subject::group(AUTHENTICATED_GROUP)]
            }
        };

        // Cluster scope: the aggregated ClusterRole and its ClusterRoleBinding of the same name.
        let mut cluster_labels = labels.clone();
        cluster_labels.insert(L_SCOPE.into(), "cluster".into());
        let mut cluster_annotations = annotations.clone();
        if !held.collections.is_empty() {
            let list: Vec<serde_json::Value> = held
                .collections
                .iter()
                .map(|(path, role)| serde_json::json!({"path": path, "role": role}))
                .collect();
            cluster_annotations.insert(
                A_COLLECTIONS.into(),
                serde_json::Value::Array(list).to_string().into(),
            );
        }
        let cluster_roles: BTreeSet<String> = held.cluster.iter().map(|r| replica_of(r)).collect();
        m.cluster_roles.push(aggregated(
            name,
            cluster_labels.clone(),
            cluster_annotations,
            &cluster_roles,
        ));
        m.cluster_role_bindings.push(ClusterRoleBinding {
            api_version: API_VERSION.into(),
            kind: "ClusterRoleBinding".into(),
            metadata: ObjectMeta {
                annotations: annotations.clone(),
                labels: cluster_labels,
                name: name.to_string(),
                namespace: None,
            },
            role_ref: RoleRef::cluster_role(name),
            subjects: subjects.clone(),
        });

        // Namespace scope: one aggregated ClusterRole `<S>.<N>` per namespace, bound in N only.
        for (namespace, roles) in &held.namespaces {
            let mut ns_labels = labels.clone();
            ns_labels.insert(L_SCOPE.into(), "namespace".into());
            ns_labels.insert(L_NAMESPACE.into(), namespace.clone().into());
            let role_name = format!("{name}.{namespace}");
            let replicas: BTreeSet<String> = roles.iter().map(|r| replica_of(r)).collect();
            m.cluster_roles.push(aggregated(
                &role_name,
                ns_labels.clone(),
                annotations.clone(),
                &replicas,
            ));
            m.role_bindings.push(RoleBinding {
                api_version: API_VERSION.into(),
                kind: "RoleBinding".into(),
                metadata: ObjectMeta {
                    annotations: annotations.clone(),
                    labels: ns_labels,
                    name: name.to_string(),
                    namespace: Some(namespace.clone()),
                },
                role_ref: RoleRef::cluster_role(&role_name),
                subjects: subjects.clone(),
            });
        }
    }

    fn build_admins(&self, m: &mut Manifests) {
        let admins: Vec<Subject> = self
            .users
            .iter()
            .filter(|u| u.is_admin && u.is_active)
            .map(|u| Subject::user(&u.name))
            .collect();
        if admins.is_empty() {
            return;
        }
        let mut labels = BTreeMap::new();
        labels.insert(MANAGED_BY.into(), "ferry".into());
        labels.insert(L_KIND.into(), "admins".into());
        labels.insert(L_SOURCE.into(), "mke3".into());
        m.cluster_role_bindings.push(ClusterRoleBinding {
            api_version: API_VERSION.into(),
            kind: "ClusterRoleBinding".into(),
            metadata: ObjectMeta {
                labels,
                name: ADMINS_BINDING.into(),
                ..Default::default()
            },
            role_ref: RoleRef::cluster_role("cluster-admin"),
            subjects: admins,
        });
    }
}

fn stem_of(stems: &HashMap<SubjectKey, String>, key: &SubjectKey) -> String {
    stems.get(key).cloned().unwrap_or_default()
}

fn base_labels() -> BTreeMap<Text, Text> {
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED_BY.into(), "ferry".into());
    labels.insert(L_SOURCE.into(), "mke3".into());
    labels
}

fn replica(name: &str, id: &str, original: &str) -> ClusterRole {
    let mut labels = base_labels();
    labels.insert(L_KIND.into(), "role".into());
    labels.insert(L_ROLE.into(), name.to_string().into());
    let mut annotations = BTreeMap::new();
    annotations.insert(A_ID.into(), id.to_string().into());
    annotations.insert(A_NAME.into(), original.to_string().into());
    ClusterRole {
        aggregation_rule: None,
        api_version: API_VERSION.into(),
        kind: "ClusterRole".into(),
        metadata: ObjectMeta {
            annotations,
            labels,
            name: name.into(),
            namespace: None,
        },
        rules: Vec::new(),
    }
}

/// An aggregating ClusterRole selecting `replicas`, or the placeholder when there is none.
fn aggregated(
    name: &str,
    labels: BTreeMap<Text, Text>,
    annotations: BTreeMap<Text, Text>,
    replicas: &BTreeSet<String>,
) -> ClusterRole {
    let selected: Vec<&str> = if replicas.is_empty() {
        vec![PLACEHOLDER_ROLE]
    } else {
        replicas.iter().map(String::as_str).collect()
    };
    ClusterRole {
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: selected
                .into_iter()
                .map(|r| LabelSelector {
                    match_labels: [(Text::Borrowed(L_ROLE), Text::Owned(r.to_string()))].into(),
                })
                .collect(),
        }),
        api_version: API_VERSION.into(),
        kind: "ClusterRole".into(),
        metadata: ObjectMeta {
            annotations,
            labels,
            name: name.into(),
            namespace: None,
        },
        rules: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(grants: &str) -> Export {
        let text = format!(
            r#"{{"version": 1,
              "accounts": [
                {{"name": "bob", "id": "u-bob", "isOrg": false}},
                {{"name": "acme", "id": "o-acme", "isOrg": true}}],
              "orgs": {{"acme": {{"members": [{{"member": {{"name": "bob", "id": "u-bob",
                  "isOrg": false}}}}],
                "teams": [{{"team": {{"name": "dev", "id": "t-dev"}}, "members": []}}]}}}},
              "roles": [{{"id": "viewonly", "name": "View Only", "system_role": true}},
                        {{"id": "r1", "name": "Dev Team", "system_role": false}}],
              "grants": {grants}}}"#
        );
        Export::from_json(&text).expect("valid export")
    }

    fn names(t: &Translation) -> Vec<String> {
        t.manifests
            .cluster_roles
            .iter()
            .map(|r| r.metadata.name.clone())
            .collect()
    }

    #[test]
    fn grants_on_namespaces_missing_from_the_target_are_not_converted() {
        let e = export(
            r#"[{"subjectID": "o-acme", "objectID": "dev", "roleID": "viewonly"},
                {"subjectID": "o-acme", "objectID": "gone", "roleID": "viewonly"}]"#,
        );
        let options = Options {
            existing_namespaces: Some(["dev".to_string()].into()),
            ..Options::default()
        };
        let t = translate(&e, &options).expect("translates");
        assert!(names(&t).contains(&"acme-org.dev".to_string()));
        assert!(!names(&t).iter().any(|n| n.ends_with(".gone")));
        let gone = t
            .report
            .grants
            .iter()
            .find(|g| g.object == "gone")
            .expect("record");
        assert_eq!(gone.outcome, GrantOutcome::NotConvertedOther);
        assert_eq!(gone.detail, "namespace gone does not exist");
        // Without the check both are converted.
        let t = translate(&e, &Options::default()).expect("translates");
        assert!(names(&t).contains(&"acme-org.gone".to_string()));
    }

    #[test]
    fn foreign_cluster_roles_of_the_target_are_never_taken() {
        let e = export("[]");
        let options = Options {
            foreign_cluster_roles: ["acme-org".to_string(), "dev-team".to_string()].into(),
            ..Options::default()
        };
        let t = translate(&e, &options).expect("translates");
        let n = names(&t);
        assert!(!n.contains(&"acme-org".to_string()), "{n:?}");
        assert!(!n.contains(&"dev-team".to_string()), "{n:?}");
        // The custom role `Dev Team` sanitises to `dev-team` too: all three are renamed.
        assert!(n.contains(&format!("dev-team-{}", names::identity_hash("role:r1", 8))));
        assert_eq!(t.report.renamed_objects(), 3);
    }

    #[test]
    fn an_org_without_grants_or_members_still_gets_its_objects() {
        let t = translate(&export("[]"), &Options::default()).expect("translates");
        let n = names(&t);
        assert!(n.contains(&"acme-org".to_string()));
        assert!(
            n.contains(&"none".to_string()),
            "placeholder added when roles lack it"
        );
        let team = t
            .manifests
            .cluster_role_bindings
            .iter()
            .find(|b| b.metadata.labels.get(L_KIND).map(|k| k.as_ref()) == Some("team"))
            .expect("team binding");
        assert!(team.subjects.is_empty());
    }
}
