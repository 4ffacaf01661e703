//! The few `rbac.authorization.k8s.io/v1` objects ferry emits, as small serde types.
//!
//! Fields are declared in the byte order of their JSON names, so every emitted map has sorted
//! keys (`rbac-mapping.md` section 7) without a post-processing pass; a unit test in
//! [`crate::emit`] checks it. Labels and annotations are `BTreeMap`s for the same reason.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A string that is usually a constant (`apiVersion`, kinds, label keys, most label values).
/// Constants are borrowed, so the tens of thousands of objects of a large model do not each
/// allocate copies of them; anything read back is owned.
pub type Text = Cow<'static, str>;

pub const API_VERSION: &str = "rbac.authorization.k8s.io/v1";
pub const API_GROUP: &str = "rbac.authorization.k8s.io";

/// `metadata` of an emitted object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<Text, Text>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Text, Text>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A `PolicyRule`. ferry always emits `rules: []`; the type exists so that manifests with rules
/// added by users can be read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    #[serde(rename = "apiGroups", default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(
        rename = "nonResourceURLs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
    #[serde(
        rename = "resourceNames",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
}

/// A label selector with `matchLabels` only (the only form ferry emits).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LabelSelector {
    #[serde(rename = "matchLabels", default)]
    pub match_labels: BTreeMap<Text, Text>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregationRule {
    #[serde(rename = "clusterRoleSelectors", default)]
    pub cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRole {
    #[serde(
        rename = "aggregationRule",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregation_rule: Option<AggregationRule>,
    #[serde(rename = "apiVersion")]
    pub api_version: Text,
    pub kind: Text,
    pub metadata: ObjectMeta,
    /// Always present, even empty: the aggregation controller fills it in.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    #[serde(rename = "apiGroup")]
    pub api_group: Text,
    pub kind: Text,
    pub name: String,
}

/// A binding subject. Sorted as `rbac-mapping.md` section 7 asks: by kind (`User`, `Group`,
/// `ServiceAccount`), then namespace, then name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(rename = "apiGroup", default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<Text>,
    pub kind: Text,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Subject {
    pub fn user(name: &str) -> Self {
        Self {
            api_group: Some(Cow::Borrowed(API_GROUP)),
            kind: Cow::Borrowed("User"),
            name: name.into(),
            namespace: None,
        }
    }

    pub fn group(name: &str) -> Self {
        Self {
            api_group: Some(Cow::Borrowed(API_GROUP)),
            kind: Cow::Borrowed("Group"),
            name: name.into(),
            namespace: None,
        }
    }

    /// Service accounts belong to the core API group, which is written as no `apiGroup`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            api_group: None,
            kind: Cow::Borrowed("ServiceAccount"),
            name: name.into(),
            namespace: Some(namespace.into()),
        }
    }

    fn kind_rank(&self) -> u8 {
        match self.kind.as_ref() {
            "User" => 0,
            "Group" => 1,
            "ServiceAccount" => 2,
            _ => 3,
        }
    }

    /// The order of subjects inside a binding.
    pub fn sort_key(&self) -> (u8, &str, &str) {
        (
            self.kind_rank(),
            self.namespace.as_deref().unwrap_or(""),
            &self.name,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRoleBinding {
    #[serde(rename = "apiVersion")]
    pub api_version: Text,
    pub kind: Text,
    pub metadata: ObjectMeta,
    #[serde(rename = "roleRef")]
    pub role_ref: RoleRef,
    #[serde(default)]
    pub subjects: Vec<Subject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    #[serde(rename = "apiVersion")]
    pub api_version: Text,
    pub kind: Text,
    pub metadata: ObjectMeta,
    #[serde(rename = "roleRef")]
    pub role_ref: RoleRef,
    #[serde(default)]
    pub subjects: Vec<Subject>,
}

impl RoleRef {
    pub fn cluster_role(name: &str) -> Self {
        Self {
            api_group: Cow::Borrowed(API_GROUP),
            kind: Cow::Borrowed("ClusterRole"),
            name: name.into(),
        }
    }
}

/// Every emitted object, each list sorted: ClusterRoles by name, ClusterRoleBindings by name,
/// RoleBindings by namespace then name. That is the document order of the YAML stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifests {
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub role_bindings: Vec<RoleBinding>,
}

impl Manifests {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.cluster_roles.len() + self.cluster_role_bindings.len() + self.role_bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts every list and every subject list in the documented order and removes duplicate
    /// subjects and selectors.
    pub fn normalize(&mut self) {
        for cr in &mut self.cluster_roles {
            if let Some(rule) = &mut cr.aggregation_rule {
                rule.cluster_role_selectors.sort();
                rule.cluster_role_selectors.dedup();
            }
        }
        // Names are unique within each list, so an unstable sort gives the same order.
        self.cluster_roles
            .sort_unstable_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for b in &mut self.cluster_role_bindings {
            sort_subjects(&mut b.subjects);
        }
        self.cluster_role_bindings
            .sort_unstable_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for b in &mut self.role_bindings {
            sort_subjects(&mut b.subjects);
        }
        self.role_bindings.sort_unstable_by(|a, b| {
            (a.metadata.namespace.as_deref(), &a.metadata.name)
                .cmp(&(b.metadata.namespace.as_deref(), &b.metadata.name))
        });
    }

    /// The documents in stream order, as JSON values (for `-o json` and for tests).
    pub fn to_json_values(&self) -> Vec<serde_json::Value> {
        let mut docs = Vec::with_capacity(self.len());
        // These types hold only strings, lists and string maps: serialising them to a JSON
        // value cannot fail, so a failure would be a bug in this module; skip rather than panic.
        docs.extend(
            self.cluster_roles
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok()),
        );
        docs.extend(
            self.cluster_role_bindings
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok()),
        );
        docs.extend(
            self.role_bindings
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok()),
        );
        docs
    }
}

fn sort_subjects(subjects: &mut Vec<Subject>) {
    // Subjects are usually built from sorted sets already; checking is cheaper than sorting.
    if !subjects.is_sorted_by(|a, b| a.sort_key() < b.sort_key()) {
        subjects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        subjects.dedup_by(|a, b| a.sort_key() == b.sort_key());
    }
}
