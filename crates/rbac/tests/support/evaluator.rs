//! A small model of how the Kubernetes API server resolves RBAC, used to check emitted
//! manifests: bindings select subjects, `roleRef`s name ClusterRoles, and the aggregation
//! controller fills every ClusterRole that has an `aggregationRule` with the rules of every
//! ClusterRole whose labels match one of its selectors (transitively: an aggregated role that
//! is itself selected passes on what it aggregated).
//!
//! It reads the YAML back as generic JSON values, not through ferry-rbac's own types, so a
//! mistake in those types cannot hide here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Who asks: a user with its groups, or a service account.
#[derive(Debug, Clone)]
pub enum Who<'a> {
    User {
        name: &'a str,
        groups: &'a [&'a str],
    },
    ServiceAccount {
        namespace: &'a str,
        name: &'a str,
    },
}

/// The ClusterRoles whose rules reach a subject, per scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// Through ClusterRoleBindings: valid in every namespace and cluster-wide.
    pub cluster: BTreeSet<String>,
    /// Through RoleBindings: namespace -> ClusterRoles valid there only.
    pub namespaced: BTreeMap<String, BTreeSet<String>>,
}

/// A ClusterRole's labels, and its selectors when it aggregates.
type RoleEntry = (BTreeMap<String, String>, Option<Vec<Selector>>);

#[derive(Debug)]
pub struct Cluster {
    /// name -> labels and selectors.
    roles: BTreeMap<String, RoleEntry>,
    /// (namespace or None, roleRef name, subjects)
    bindings: Vec<(Option<String>, String, Vec<Value>)>,
    /// name -> every ClusterRole whose rules end up in it (itself included).
    closure: BTreeMap<String, BTreeSet<String>>,
    /// Replica name -> MKE 3 role ID (`ferry.io/mke3-id` of `ferry.io/kind: role` roles).
    replica_ids: BTreeMap<String, String>,
    /// All documents, for other checks.
    pub documents: Vec<Value>,
}

#[derive(Debug, Clone)]
struct Selector(BTreeMap<String, String>);

impl Selector {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        // An empty selector matches every ClusterRole, as in Kubernetes.
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

impl Cluster {
    pub fn parse(yaml: &str) -> Cluster {
        let documents = ferry_rbac::emit::read_documents(yaml).expect("manifests parse back");
        let mut roles = BTreeMap::new();
        let mut bindings = Vec::new();
        let mut replica_ids = BTreeMap::new();
        for d in &documents {
            assert_eq!(
                str_at(d, &["apiVersion"]),
                Some("rbac.authorization.k8s.io/v1"),
                "{d}"
            );
            let name = str_at(d, &["metadata", "name"]).expect("name").to_string();
            let namespace = str_at(d, &["metadata", "namespace"]).map(str::to_string);
            match str_at(d, &["kind"]).expect("kind") {
                "ClusterRole" => {
                    assert!(namespace.is_none(), "namespaced ClusterRole {name}");
                    let labels = string_map(d.pointer("/metadata/labels"));
                    if labels.get("ferry.io/kind").map(String::as_str) == Some("role") {
                        let id = str_at(d, &["metadata", "annotations", "ferry.io/mke3-id"])
                            .expect("replica mke3-id");
                        replica_ids.insert(name.clone(), id.to_string());
                    }
                    let selectors = d.get("aggregationRule").map(|rule| {
                        rule.get("clusterRoleSelectors")
                            .and_then(Value::as_array)
                            .expect("clusterRoleSelectors")
                            .iter()
                            .map(|s| {
                                assert!(
                                    s.get("matchExpressions").is_none(),
                                    "matchExpressions are not modelled"
                                );
                                Selector(string_map(s.get("matchLabels")))
                            })
                            .collect::<Vec<_>>()
                    });
                    let previous = roles.insert(name.clone(), (labels, selectors));
                    assert!(previous.is_none(), "duplicate ClusterRole {name}");
                }
                kind @ ("ClusterRoleBinding" | "RoleBinding") => {
                    assert_eq!(kind == "RoleBinding", namespace.is_some(), "{name}");
                    assert_eq!(
                        str_at(d, &["roleRef", "kind"]),
                        Some("ClusterRole"),
                        "{name}: only ClusterRole refs are emitted"
                    );
                    assert_eq!(
                        str_at(d, &["roleRef", "apiGroup"]),
                        Some("rbac.authorization.k8s.io")
                    );
                    let role = str_at(d, &["roleRef", "name"]).expect("roleRef.name");
                    let subjects = d
                        .get("subjects")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    bindings.push((namespace, role.to_string(), subjects));
                }
                other => panic!("unexpected kind {other}"),
            }
        }
        let mut cluster = Cluster {
            roles,
            bindings,
            closure: BTreeMap::new(),
            replica_ids,
            documents,
        };
        let mut by_label: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for (name, (labels, _)) in &cluster.roles {
            for (k, v) in labels {
                by_label.entry((k, v)).or_default().push(name);
            }
        }
        let closure = cluster
            .roles
            .keys()
            .map(|n| (n.clone(), cluster.expand(n, &by_label)))
            .collect();
        drop(by_label);
        cluster.closure = closure;
        cluster
    }

    /// Every ClusterRole whose rules flow into `name`, by a graph search over selectors.
    fn expand(&self, name: &str, by_label: &BTreeMap<(&str, &str), Vec<&str>>) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([name.to_string()]);
        let mut queue = vec![name.to_string()];
        while let Some(current) = queue.pop() {
            let Some((_, Some(selectors))) = self.roles.get(&current) else {
                continue;
            };
            for selector in selectors {
                // Candidates: the roles carrying the selector's first label (all roles for an
                // empty selector), then the full match.
                let candidates: Vec<&str> = match selector.0.iter().next() {
                    Some((k, v)) => by_label
                        .get(&(k.as_str(), v.as_str()))
                        .cloned()
                        .unwrap_or_default(),
                    None => self.roles.keys().map(String::as_str).collect(),
                };
                for other in candidates {
                    let labels = &self.roles[other].0;
                    if selector.matches(labels) && seen.insert(other.to_string()) {
                        queue.push(other.to_string());
                    }
                }
            }
        }
        seen
    }

    /// roleRefs that name a ClusterRole that is not in the manifests.
    pub fn missing_role_refs(&self) -> BTreeSet<String> {
        self.bindings
            .iter()
            .filter(|(_, r, _)| !self.roles.contains_key(r))
            .map(|(_, r, _)| r.clone())
            .collect()
    }

    pub fn labels(&self, role: &str) -> Option<&BTreeMap<String, String>> {
        self.roles.get(role).map(|(l, _)| l)
    }

    fn binds(subject: &Value, who: &Who<'_>, binding_ns: Option<&str>) -> bool {
        let kind = str_at(subject, &["kind"]);
        let name = str_at(subject, &["name"]);
        match who {
            Who::User { name: user, groups } => match kind {
                Some("User") => name == Some(user),
                Some("Group") => name.is_some_and(|g| groups.contains(&g)),
                _ => false,
            },
            Who::ServiceAccount {
                namespace,
                name: sa,
            } => match kind {
                Some("ServiceAccount") => {
                    // A ServiceAccount subject without a namespace means the binding's own.
                    let ns = str_at(subject, &["namespace"]).or(binding_ns);
                    name == Some(sa) && ns == Some(namespace)
                }
                Some("Group") => name.is_some_and(|g| {
                    g == "system:authenticated"
                        || g == "system:serviceaccounts"
                        || g == format!("system:serviceaccounts:{namespace}")
                }),
                _ => false,
            },
        }
    }

    /// The ClusterRoles (aggregating roles included) whose rules apply to `who`.
    pub fn effective(&self, who: &Who<'_>) -> Effective {
        let mut e = Effective::default();
        for (ns, role, subjects) in &self.bindings {
            if !subjects.iter().any(|s| Self::binds(s, who, ns.as_deref())) {
                continue;
            }
            // A roleRef to a role that is not in the manifests (cluster-admin) is kept by name:
            // it exists in every cluster.
            let reached = self
                .closure
                .get(role)
                .cloned()
                .unwrap_or_else(|| BTreeSet::from([role.clone()]));
            match ns {
                None => e.cluster.extend(reached),
                Some(ns) => e.namespaced.entry(ns.clone()).or_default().extend(reached),
            }
        }
        e
    }

    /// The MKE 3 role IDs behind the role replicas in `roles`; roles that are not in the
    /// manifests are kept by name (`cluster-admin`), aggregating roles are left out (their
    /// own rules are overwritten by the aggregation controller).
    pub fn role_ids(&self, roles: &BTreeSet<String>) -> BTreeSet<String> {
        roles
            .iter()
            .filter_map(|r| match self.replica_ids.get(r) {
                Some(id) => Some(id.clone()),
                None if !self.roles.contains_key(r) => Some(r.clone()),
                None => None,
            })
            .collect()
    }
}
