//! The RBAC that `ferry rbac` writes gives, on a **real** kube-apiserver (RBAC authorizer) with
//! a **real** kube-controller-manager (ClusterRole aggregation), exactly the access the MKE 3
//! access model implies: no more, no less, for every user of every fixture.
//!
//! For every access model under `crates/rbac/tests/fixtures/` (the ones the snapshot tests
//! translate), one after another since they reuse object names:
//! 1. the namespaces the model names are created, and every object of
//!    `ferry_rbac::translate(export, &Options::default())` (the manifests `ferry rbac` writes) is
//!    applied through ferry's own `ClusterApi::apply` (server-side apply, manager `ferry`);
//! 2. as an operator filling MKE 4k's empty role replicas would, each replica (ClusterRole
//!    labelled `ferry.io/kind: role`) gets one distinct rule, `get` on the ConfigMap named like
//!    the replica (a JSON merge patch by field manager `operator`). The one exception is `none`,
//!    see [`PLACEHOLDER`];
//! 3. the test waits until the controller manager has aggregated: every aggregating ClusterRole
//!    holds exactly the union of the rules of the replicas its selectors match;
//! 4. for every principal of the model (each user account, plus service accounts, members that
//!    are not accounts, an authenticated stranger and the anonymous user where the model has
//!    them), every verb of [`VERBS`], every replica's ConfigMap plus one no rule names, and every
//!    namespace the model names plus one it does not name plus cluster-wide (no namespace), the
//!    admin posts a `SubjectAccessReview` and compares `status.allowed` with what the model
//!    implies. The model ([`Model`]) is computed here, straight from the export JSON, by the
//!    rules of `rbac-mapping.md` sections 2 to 4, without ferry-rbac's translator;
//! 5. every object applied and every namespace created is deleted (`ClusterApi::delete`).
//!
//! Every mismatch is collected and the test fails listing them all; it ends with one line
//! `RBAC matrix: N answers checked ...` and checks that every fixture contributed answers. It
//! needs the control plane of `testenv/k8s` and fails loudly without it.
#![allow(clippy::unwrap_used)]
// The summary line and the per-fixture counts are the point of the output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_core::ClusterApi;
use ferry_core::cluster::ObjectRef;
use ferry_kube_api::KubeCluster;
use ferry_kube_api::testing::real::{RealServer, announce, eventually};
use futures_util::{StreamExt as _, stream};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// The reference access model of ferry-rbac's own tests (what each MKE 3 user should be able
/// to do, computed from the export by `rbac-mapping.md`'s rules without the translator): the
/// in-test RBAC evaluator there and the real authorizer here answer to the same model.
#[allow(dead_code)]
#[path = "../../rbac/tests/support/model.rs"]
mod reference;

/// The `objectID` of grants on all Kubernetes namespaces (and cluster-wide).
const ALL_NAMESPACES: &str = "kubernetesnamespaces";
/// The MKE 3 grant subject of every authenticated user, and its Kubernetes group.
const AUTHENTICATED_SUBJECT: &str = "authenticated";
const AUTHENTICATED: &str = "system:authenticated";
const SA_PREFIX: &str = "system:serviceaccount:";
/// The replica that is never given a rule. It is both MKE 3's built-in `None` role (no access by
/// definition) and the placeholder every aggregating ClusterRole without a role selects
/// (`rbac-mapping.md` 3.3: "None -> one selector for `none`"), so every organisation and team
/// without an all-namespaces grant selects it cluster-wide. An operator must leave it empty:
/// a rule on it would reach every member of all those organisations and teams, everywhere.
const PLACEHOLDER: &str = "none";
/// A namespace no fixture names.
const UNNAMED_NAMESPACE: &str = "ferry-rbac-unnamed";
/// A ConfigMap no replica's rule names: only admins may touch it.
const UNLISTED_RESOURCE: &str = "ferry-rbac-unlisted";
/// An authenticated user no fixture knows.
const STRANGER: &str = "ferry-rbac-stranger";
/// The rules give `get` only; `delete` proves they give nothing more.
const VERBS: [&str; 2] = ["get", "delete"];
/// The field manager of the rules added to the replicas.
const OPERATOR: &str = "operator";
/// Requests in flight at once.
const AT_ONCE: usize = 16;
/// How long a mismatch must persist to count (the authorizer reads bindings through informers,
/// so a binding just applied or deleted may take a moment to count).
const SETTLE: Duration = Duration::from_secs(5);
/// The labels every object `ferry rbac` writes carries.
const FERRY_SELECTOR: &str = "app.kubernetes.io/managed-by=ferry,ferry.io/source=mke3";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rbac/tests/fixtures")
}

// ---------------------------------------------------------------------------------------------
// The model: who may do what, from the export JSON alone.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An active user account.
    User,
    /// An active system admin (`isAdmin: true`): `cluster-admin`, allowed everywhere.
    Admin,
    /// `isActive: false`: cannot log in to MKE 4k at all, so no request of theirs reaches the
    /// authorizer. Their reviews are sent with their name and **no group** (an authenticator
    /// that refuses them attaches none, not even `system:authenticated`): what is proven is
    /// that no binding names them. Expected: denied everywhere, admins included.
    Inactive,
    /// `system:serviceaccount:<ns>:<name>` with its groups.
    ServiceAccount,
    /// A team or organisation member whose ID is no user account of the export (`ghost` of
    /// fixture 05). Users are the accounts (`rbac-mapping.md` section 2), so such a name is a
    /// stranger: it gets what any authenticated user gets and nothing through the teams.
    NotAnAccount,
    /// [`STRANGER`]: what every authenticated user gets (the `authenticated` grants).
    Stranger,
    /// `system:anonymous` when the model grants to `anonymous`: not converted
    /// (`rbac-mapping.md` 3.2), so denied everywhere.
    Anonymous,
}

/// Roles held, by MKE 3 role ID.
#[derive(Debug, Clone, Default)]
struct Held {
    /// Granted on `kubernetesnamespaces`: every namespace and cluster-wide.
    everywhere: BTreeSet<String>,
    /// Granted on one namespace.
    namespaced: BTreeMap<String, BTreeSet<String>>,
}

impl From<reference::Expected> for Held {
    fn from(e: reference::Expected) -> Held {
        Held {
            everywhere: e.cluster,
            namespaced: e.namespaced,
        }
    }
}

#[derive(Debug)]
struct Principal {
    /// The Kubernetes user name of the review.
    name: String,
    groups: Vec<String>,
    kind: Kind,
    held: Held,
}

impl Principal {
    /// What the model says about `verb` on the ConfigMap whose rule comes from `role` (`None`:
    /// no rule names it) in `namespace` (`None`: cluster-wide).
    fn expected(&self, verb: &str, role: Option<&str>, namespace: Option<&str>) -> bool {
        if self.kind == Kind::Admin {
            return true;
        }
        let Some(role) = role else { return false };
        verb == "get"
            && (self.held.everywhere.contains(role)
                || namespace
                    .and_then(|n| self.held.namespaced.get(n))
                    .is_some_and(|roles| roles.contains(role)))
    }
}

struct Model {
    principals: Vec<Principal>,
    /// Namespaces in which some subject holds a role (where RoleBindings go).
    grant_namespaces: BTreeSet<String>,
    /// Every grant object that could be a namespace name, whatever its class (collection IDs
    /// such as `c-video` included: a collection grant must give nothing in a namespace of that
    /// name either).
    named_namespaces: BTreeSet<String>,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn flag(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A DNS-1123 subdomain: what a service account name must be.
fn is_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.iter().all(|c| alnum(c) || *c == b'-')
                && alnum(&b[0])
                && alnum(&b[b.len() - 1])
        })
}

/// The principals of an export and the namespaces its grants name. What each principal holds
/// comes from the reference model (`crates/rbac/tests/support/model.rs`), by `rbac-mapping.md`:
/// * users are the accounts with `isOrg: false` (section 2); a user holds the roles granted to
///   itself, to each team it is a member of, to each organisation it is a member of (directly
///   or through any team of the organisation, section 1) and to `authenticated`;
/// * grant classes (section 4): a role ID missing from `roles` gives nothing; an `objectID`
///   from `collections`, or a grant carrying a `collectionPath` (fixture 11's `c-unlisted`), is
///   a Swarm collection grant and gives nothing in Kubernetes; `kubernetesnamespaces` gives the
///   role in every namespace and cluster-wide; anything else gives it in that namespace only. An
///   `objectID` that cannot be a namespace name (`Not_A_Namespace`, fixture 05) gives nothing;
/// * an `orgs` entry whose name is no organisation account (`vanished` of fixture 05) and its
///   teams give nothing; a team is a team of the organisation whose entry lists it, whatever
///   its `orgID` says (`odd` of fixture 05);
/// * inactive users get nothing; active system admins get everything;
/// * service accounts `system:serviceaccount:<ns>:<name>` with a valid namespace and name hold
///   their grants and the `authenticated` ones; `anonymous` and any other special subject are
///   not converted (section 3.2);
/// * a member that is no user account (`ghost` of fixture 05) is a stranger: it gets what any
///   authenticated user gets.
fn model(export: &Value, typed: &ferry_rbac::Export) -> Model {
    // User accounts by ID (duplicates of one ID are the same account).
    let mut users: BTreeMap<&str, &Value> = BTreeMap::new();
    for a in list(export, "accounts") {
        if !flag(a, "isOrg", false) {
            users.entry(text(a, "id")).or_insert(a);
        }
    }
    let roles: BTreeSet<&str> = list(export, "roles")
        .iter()
        .map(|r| text(r, "id"))
        .collect();
    let collections: BTreeSet<&str> = list(export, "collections")
        .iter()
        .map(|c| text(c, "id"))
        .collect();

    // Names of members that are no user account.
    let mut strangers: BTreeSet<&str> = BTreeSet::new();
    if let Some(orgs) = export.get("orgs").and_then(Value::as_object) {
        for org in orgs.values() {
            let teams = list(org, "teams").iter().flat_map(|t| list(t, "members"));
            for m in list(org, "members").iter().chain(teams) {
                let Some(account) = m.get("member") else {
                    continue;
                };
                // Matched as the reference model matches them: by ID, or by name when the
                // membership carries no ID.
                let (id, name) = (text(account, "id"), text(account, "name"));
                let known = users.contains_key(id)
                    || (id.is_empty() && users.values().any(|u| text(u, "name") == name));
                if !known {
                    strangers.insert(name);
                }
            }
        }
    }

    // Where the grants name namespaces (what the principals hold comes from the reference
    // model below).
    let mut grant_namespaces = BTreeSet::new();
    let mut named_namespaces = BTreeSet::new();
    let mut anonymous = false;
    for g in list(export, "grants") {
        let (subject, object, role) =
            (text(g, "subjectID"), text(g, "objectID"), text(g, "roleID"));
        anonymous |= subject == "anonymous";
        if object != ALL_NAMESPACES && reference::is_label(object) {
            named_namespaces.insert(object.to_string());
            let collection = collections.contains(object) || !text(g, "collectionPath").is_empty();
            if roles.contains(role) && !collection {
                grant_namespaces.insert(object.to_string());
            }
        }
    }
    let authenticated = Held::from(reference::expected_for_subject_ids(
        typed,
        &BTreeSet::from([AUTHENTICATED_SUBJECT.to_string(), AUTHENTICATED.to_string()]),
    ));

    let mut principals = Vec::new();
    for account in users.values() {
        let name = text(account, "name").to_string();
        let principal = if !flag(account, "isActive", true) {
            Principal {
                name,
                groups: Vec::new(),
                kind: Kind::Inactive,
                held: Held::default(),
            }
        } else if flag(account, "isAdmin", false) {
            Principal {
                name,
                groups: vec![AUTHENTICATED.into()],
                kind: Kind::Admin,
                held: Held::default(),
            }
        } else {
            let (expected, _) = reference::expected_for_user(typed, &name);
            Principal {
                name,
                groups: vec![AUTHENTICATED.into()],
                kind: Kind::User,
                held: Held::from(expected),
            }
        };
        principals.push(principal);
    }
    let mut service_accounts: BTreeSet<&str> = BTreeSet::new();
    for g in list(export, "grants") {
        let subject = text(g, "subjectID");
        if let Some((ns, name)) = subject
            .strip_prefix(SA_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        {
            // An invalid one (`system:serviceaccount:bad`) names no service account that can
            // exist, so no request can carry it: nothing to check.
            if reference::is_label(ns) && is_subdomain(name) {
                service_accounts.insert(subject);
            }
        }
    }
    for subject in service_accounts {
        let (ns, sa) = subject[SA_PREFIX.len()..]
            .split_once(':')
            .unwrap_or_default();
        let h = Held::from(reference::expected_for_service_account(typed, ns, sa));
        principals.push(Principal {
            name: subject.to_string(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                AUTHENTICATED.into(),
            ],
            kind: Kind::ServiceAccount,
            held: h,
        });
    }
    for name in strangers {
        principals.push(Principal {
            name: name.to_string(),
            groups: vec![AUTHENTICATED.into()],
            kind: Kind::NotAnAccount,
            held: authenticated.clone(),
        });
    }
    principals.push(Principal {
        name: STRANGER.into(),
        groups: vec![AUTHENTICATED.into()],
        kind: Kind::Stranger,
        held: authenticated.clone(),
    });
    if anonymous {
        principals.push(Principal {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            kind: Kind::Anonymous,
            held: Held::default(),
        });
    }
    let mut seen = BTreeSet::new();
    for p in &principals {
        assert!(
            seen.insert(p.name.as_str()),
            "the model has two principals named {} (two accounts with one name?): not handled here",
            p.name
        );
    }
    Model {
        principals,
        grant_namespaces,
        named_namespaces,
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster side.
// ---------------------------------------------------------------------------------------------

/// The label of the namespaces this test creates (so a rerun after an interrupted run knows
/// them as its own and deletes them).
const NAMESPACE_MARK: &str = "ferry.test/real-rbac";

/// A rule as a comparable value: each list sorted.
type RuleKey = Vec<(&'static str, Vec<String>)>;

fn rule_key(rule: &Value) -> RuleKey {
    [
        "apiGroups",
        "nonResourceURLs",
        "resourceNames",
        "resources",
        "verbs",
    ]
    .into_iter()
    .map(|field| {
        let mut values: Vec<String> = list(rule, field)
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        values.sort();
        (field, values)
    })
    .collect()
}

/// The operator's rule for a replica: `get` on the ConfigMap of the replica's name.
fn replica_rule(replica: &str) -> Value {
    json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
           "resourceNames": [replica]})
}

fn namespace_ref(ns: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: ns.into(),
    }
}

fn label<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn name_of(doc: &Value) -> &str {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Deletes what an interrupted earlier run left: every ClusterRole, ClusterRoleBinding and
/// RoleBinding with the labels of `ferry rbac`'s objects (no other test applies them to this
/// control plane) and the namespaces this test marked.
async fn remove_leftovers(cluster: &KubeCluster, client: &kube::Client) {
    let rbac = [
        ("rbac.authorization.k8s.io", "ClusterRole", "clusterroles"),
        (
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
        ),
        ("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
        ("", "Namespace", "namespaces"),
    ];
    for (group, kind, plural) in rbac {
        let gvk = GroupVersionKind::gvk(group, "v1", kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let selector = if kind == "Namespace" {
            NAMESPACE_MARK
        } else {
            FERRY_SELECTOR
        };
        let found = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap_or_else(|e| panic!("list {plural}: {e}"));
        for o in found {
            let r = ObjectRef {
                api_version: ar.api_version.clone(),
                kind: kind.into(),
                namespace: o.metadata.namespace.clone(),
                name: o.metadata.name.clone().unwrap_or_default(),
            };
            eprintln!("real_rbac: removing {r}, left by an earlier run");
            cluster.delete(&r).await.unwrap();
        }
    }
}

/// Makes sure namespace `ns` exists (waiting while one of that name terminates). Returns
/// whether this test owns it (made it now or in an earlier run), and so must delete it.
async fn ensure_namespace(cluster: &KubeCluster, ns: &str) -> bool {
    let r = namespace_ref(ns);
    let existing = eventually(
        &format!("namespace {ns} gone or not terminating"),
        Duration::from_secs(120),
        || async {
            match cluster.get(&r).await {
                Ok(None) => Ok(None),
                Ok(Some(v)) if v.pointer("/metadata/deletionTimestamp").is_some() => {
                    Err(format!("namespace {ns} is terminating"))
                }
                Ok(Some(v)) => Ok(Some(v)),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    if let Some(v) = existing {
        return v
            .pointer("/metadata/labels")
            .and_then(|l| l.get(NAMESPACE_MARK))
            .is_some();
    }
    apply(
        cluster,
        &json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {NAMESPACE_MARK: "true"}}}),
    )
    .await;
    true
}

/// `ClusterApi::apply`, retried while the error is transient (or the namespace just made is not
/// visible yet), failing at once on anything else.
async fn apply(cluster: &KubeCluster, doc: &Value) {
    let r = ObjectRef::of(doc).unwrap();
    eventually(&format!("apply {r}"), Duration::from_secs(30), || async {
        match cluster.apply(doc).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_transient() || matches!(e, ferry_core::ClusterError::NotFound(_)) => {
                Err(e.to_string())
            }
            Err(e) => panic!("apply {r}: {e}"),
        }
    })
    .await
}

/// Waits until every aggregating ClusterRole of `docs` holds exactly the union of the rules of
/// the replicas its selectors match. Returns how many there are.
async fn wait_for_aggregation(
    cluster: &KubeCluster,
    fixture: &str,
    docs: &[Value],
    rules: &BTreeMap<String, Value>,
) -> usize {
    let replicas: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" && label(d, "ferry.io/kind") == Some("role"))
        .collect();
    let mut expected: Vec<(ObjectRef, BTreeSet<RuleKey>)> = Vec::new();
    for d in docs.iter().filter(|d| d.get("aggregationRule").is_some()) {
        let mut union = BTreeSet::new();
        for selector in list(&d["aggregationRule"], "clusterRoleSelectors") {
            let want = selector
                .get("matchLabels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for r in &replicas {
                if want.iter().all(|(k, v)| label(r, k) == v.as_str()) {
                    union.extend(rules.get(name_of(r)).map(rule_key));
                }
            }
        }
        expected.push((ObjectRef::of(d).unwrap(), union));
    }
    eventually(
        &format!("{fixture}: ClusterRole aggregation by the controller manager"),
        Duration::from_secs(60),
        || async {
            let mut wrong = Vec::new();
            for (r, want) in &expected {
                let got = cluster
                    .get(r)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("{r} is gone"))?;
                let have: BTreeSet<RuleKey> = list(&got, "rules").iter().map(rule_key).collect();
                if &have != want {
                    wrong.push(format!(
                        "{} has {} rules, {} expected",
                        r.name,
                        have.len(),
                        want.len()
                    ));
                }
            }
            if wrong.is_empty() {
                Ok(expected.len())
            } else {
                Err(wrong.join("; "))
            }
        },
    )
    .await
}

/// One question to the authorizer and the model's answer.
struct Check<'a> {
    who: &'a Principal,
    verb: &'static str,
    resource: &'a str,
    /// The MKE 3 role whose replica's rule names `resource`.
    role: Option<&'a str>,
    namespace: Option<&'a str>,
    expected: bool,
}

impl Check<'_> {
    fn describe(&self, fixture: &str, got: bool) -> String {
        let yes_no = |b: bool| if b { "allowed" } else { "denied" };
        format!(
            "{fixture}: {:?} {:?} (groups {:?}) {} configmaps/{} (rule of role {}) {}: expected \
             {}, got {}",
            self.who.kind,
            self.who.name,
            self.who.groups,
            self.verb,
            self.resource,
            self.role.unwrap_or("-"),
            self.namespace
                .map_or("cluster-wide".to_string(), |n| format!("in namespace {n}")),
            yes_no(self.expected),
            yes_no(got)
        )
    }
}

/// `status.allowed` of a SubjectAccessReview, posted as the admin.
async fn review(client: &kube::Client, c: &Check<'_>) -> bool {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(c.who.name.clone()),
            groups: Some(c.who.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(String::new()),
                version: Some("v1".into()),
                resource: Some("configmaps".into()),
                verb: Some(c.verb.into()),
                name: Some(c.resource.into()),
                namespace: c.namespace.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = eventually(
        "a SubjectAccessReview answer",
        Duration::from_secs(30),
        || async {
            api.create(&PostParams::default(), &sar)
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
    answer.status.is_some_and(|s| s.allowed)
}

async fn ask_all(client: &kube::Client, checks: &[&Check<'_>]) -> Vec<bool> {
    stream::iter(checks)
        .map(|c| review(client, c))
        .buffered(AT_ONCE)
        .collect()
        .await
}

/// What one fixture gave.
struct Outcome {
    fixture: String,
    answers: usize,
    /// Answers of the authorizer that differ from the model.
    mismatches: Vec<String>,
    /// Translations that break the model's assumptions (a role without its replica).
    problems: Vec<String>,
    /// Namespaces deleted at the end, which may still be terminating.
    deleted_namespaces: Vec<String>,
}

async fn check_fixture(cluster: &KubeCluster, client: &kube::Client, path: &Path) -> Outcome {
    let fixture_name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let fixture = fixture_name.as_str();
    let json_text = std::fs::read_to_string(path).unwrap();
    let raw: Value = serde_json::from_str(&json_text).unwrap();
    let export = ferry_rbac::Export::from_json(&json_text).unwrap();
    let translation = ferry_rbac::translate(&export, &ferry_rbac::Options::default()).unwrap();
    let docs = translation.manifests.to_json_values();
    assert_eq!(docs.len(), translation.manifests.len(), "{fixture}");
    let model = model(&raw, &export);
    let mut problems = Vec::new();

    // The replicas: name -> MKE 3 role ID (`ferry.io/mke3-id`). Every role of the export must
    // have one.
    let replicas: BTreeMap<String, String> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" && label(d, "ferry.io/kind") == Some("role"))
        .map(|d| {
            let id = d
                .pointer("/metadata/annotations/ferry.io~1mke3-id")
                .and_then(Value::as_str)
                .unwrap_or("");
            (name_of(d).to_string(), id.to_string())
        })
        .collect();
    for role in list(&raw, "roles") {
        let id = text(role, "id");
        if replicas.values().filter(|v| *v == id).count() != 1 {
            problems.push(format!(
                "{fixture}: role {id} has not exactly one replica: {replicas:?}"
            ));
        }
    }
    assert!(!replicas.contains_key(UNLISTED_RESOURCE), "{fixture}");

    // 1. Namespaces, then every object through ferry's own apply.
    let binding_namespaces: BTreeSet<String> = docs
        .iter()
        .filter_map(|d| d.pointer("/metadata/namespace").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let needed: BTreeSet<&String> = model
        .grant_namespaces
        .iter()
        .chain(&binding_namespaces)
        .collect();
    let mut owned = Vec::new();
    for ns in needed {
        if ensure_namespace(cluster, ns).await {
            owned.push(ns.clone());
        }
    }
    stream::iter(&docs)
        .for_each_concurrent(8, |d| apply(cluster, d))
        .await;

    // 2. The operator's rules: one distinct rule per replica, `none` excepted (PLACEHOLDER).
    let rules: BTreeMap<String, Value> = replicas
        .keys()
        .filter(|name| name.as_str() != PLACEHOLDER)
        .map(|name| (name.clone(), replica_rule(name)))
        .collect();
    let roles_api: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    let operator = PatchParams {
        field_manager: Some(OPERATOR.into()),
        ..PatchParams::default()
    };
    stream::iter(&rules)
        .for_each_concurrent(8, |(name, rule)| {
            let (api, operator) = (&roles_api, &operator);
            async move {
                api.patch(name, operator, &Patch::Merge(json!({"rules": [rule]})))
                    .await
                    .unwrap_or_else(|e| panic!("{fixture}: add the rule of {name}: {e}"));
            }
        })
        .await;

    // 3. Aggregation.
    let aggregating = wait_for_aggregation(cluster, fixture, &docs, &rules).await;

    // 4. The matrix.
    let mut resources: Vec<(&str, Option<&str>)> = rules
        .keys()
        .map(|name| (name.as_str(), replicas.get(name).map(String::as_str)))
        .collect();
    resources.push((UNLISTED_RESOURCE, None));
    let mut namespaces: BTreeSet<&str> = model
        .named_namespaces
        .iter()
        .chain(&model.grant_namespaces)
        .chain(&binding_namespaces)
        .map(String::as_str)
        .collect();
    assert!(!namespaces.contains(UNNAMED_NAMESPACE), "{fixture}");
    namespaces.insert(UNNAMED_NAMESPACE);
    let scopes: Vec<Option<&str>> = std::iter::once(None)
        .chain(namespaces.iter().map(|n| Some(*n)))
        .collect();
    let mut checks = Vec::new();
    for who in &model.principals {
        for verb in VERBS {
            for &(resource, role) in &resources {
                for &namespace in &scopes {
                    checks.push(Check {
                        who,
                        verb,
                        resource,
                        role,
                        namespace,
                        expected: who.expected(verb, role, namespace),
                    });
                }
            }
        }
    }
    let all: Vec<&Check<'_>> = checks.iter().collect();
    let answers = ask_all(client, &all).await;
    // A mismatch counts only when it persists for SETTLE (informer lag, see SETTLE).
    let mut wrong: Vec<(&Check<'_>, bool)> = all
        .iter()
        .zip(answers)
        .filter(|(c, got)| *got != c.expected)
        .map(|(c, got)| (*c, got))
        .collect();
    let deadline = Instant::now() + SETTLE;
    while !wrong.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let again: Vec<&Check<'_>> = wrong.iter().map(|(c, _)| *c).collect();
        let answers = ask_all(client, &again).await;
        wrong = again
            .into_iter()
            .zip(answers)
            .filter(|(c, got)| *got != c.expected)
            .collect();
    }
    let mismatches: Vec<String> = wrong
        .iter()
        .map(|(c, got)| c.describe(fixture, *got))
        .collect();
    eprintln!(
        "real_rbac: {fixture}: {} objects applied, {} replicas given a rule, {aggregating} \
         aggregating ClusterRoles aggregated; {} answers = {} principals x {} verbs x {} \
         resources x {} scopes ({} allowed by the model), {} mismatched",
        docs.len(),
        rules.len(),
        checks.len(),
        model.principals.len(),
        VERBS.len(),
        resources.len(),
        scopes.len(),
        checks.iter().filter(|c| c.expected).count(),
        wrong.len()
    );

    // 5. Clean up: every object applied, then the namespaces made.
    let refs: Vec<ObjectRef> = docs.iter().map(|d| ObjectRef::of(d).unwrap()).collect();
    stream::iter(&refs)
        .for_each_concurrent(8, |r| async move {
            match cluster.delete(r).await {
                Ok(true) => {}
                other => panic!("{fixture}: delete {r}: {other:?}"),
            }
        })
        .await;
    for ns in &owned {
        cluster.delete(&namespace_ref(ns)).await.unwrap();
    }
    Outcome {
        fixture: fixture_name,
        answers: checks.len(),
        mismatches,
        problems,
        deleted_namespaces: owned,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_authorizer_gives_every_user_exactly_the_access_of_the_mke3_model() {
    let started = Instant::now();
    let server = RealServer::from_env("the RBAC that `ferry rbac` writes");
    let cluster = server.cluster(Duration::from_millis(200)).await;
    let client = server.client().await;
    remove_leftovers(&cluster, &client).await;

    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no fixtures in {}",
        fixtures_dir().display()
    );

    let mut outcomes = Vec::new();
    for file in &files {
        outcomes.push(check_fixture(&cluster, &client, file).await);
    }
    // Leave no terminating namespace behind for the next test binary.
    for ns in outcomes.iter().flat_map(|o| &o.deleted_namespaces) {
        let r = namespace_ref(ns);
        eventually(
            &format!("namespace {ns} gone"),
            Duration::from_secs(120),
            || async {
                match cluster.get(&r).await {
                    Ok(None) => Ok(()),
                    Ok(Some(_)) => Err("still there".to_string()),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
    }

    let answers: usize = outcomes.iter().map(|o| o.answers).sum();
    let mismatches: Vec<&String> = outcomes.iter().flat_map(|o| &o.mismatches).collect();
    let problems: Vec<&String> = outcomes.iter().flat_map(|o| &o.problems).collect();
    announce(&format!(
        "RBAC matrix: {answers} answers checked (users x verbs x resources x namespaces) over {} \
         fixtures, {} matched, {} mismatched",
        outcomes.len(),
        answers - mismatches.len(),
        mismatches.len()
    ));
    eprintln!("real_rbac: took {:.1?}", started.elapsed());
    assert!(
        mismatches.is_empty(),
        "{} mismatches between the real authorizer and the MKE 3 model:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        problems.is_empty(),
        "translations the model cannot check:\n{}",
        problems
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(answers > 0, "no answer checked");
    let silent: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.answers == 0)
        .map(|o| o.fixture.as_str())
        .collect();
    assert!(silent.is_empty(), "fixtures without answers: {silent:?}");
    assert_eq!(outcomes.len(), files.len());
}
