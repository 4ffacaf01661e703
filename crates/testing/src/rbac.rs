//! The fake's answer to a `SubjectAccessReview`: RBAC over the Roles, ClusterRoles and their
//! bindings among the applied objects, as the API server's RBAC authorizer decides (members of
//! `system:masters` may do anything; a rule allows a request when its API group, resource, verb
//! and, when it names some, resource name all match). The bootstrap roles a real API server has
//! are not there: a fake cluster starts with no grants.

use std::collections::BTreeMap;

use ferry_core::cluster::ObjectRef;
use serde_json::Value;

const RBAC: &str = "rbac.authorization.k8s.io/v1";

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn matches(list: &[&str], want: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == want)
}

/// Whether the review's user may do what it asks.
pub fn allowed(objects: &BTreeMap<ObjectRef, Value>, review: &Value) -> bool {
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or("");
    let groups = strs(spec.get("groups"));
    if groups.contains(&"system:masters") {
        return true;
    }
    let a = &spec["resourceAttributes"];
    let field = |k: &str| a[k].as_str().unwrap_or("");
    let (namespace, verb, group, resource, name) = (
        field("namespace"),
        field("verb"),
        field("group"),
        field("resource"),
        field("name"),
    );
    let is_subject = |s: &Value| match s["kind"].as_str() {
        Some("User") => s["name"].as_str() == Some(user),
        Some("Group") => s["name"].as_str().is_some_and(|g| groups.contains(&g)),
        Some("ServiceAccount") => {
            let sa = format!(
                "system:serviceaccount:{}:{}",
                s["namespace"].as_str().unwrap_or(""),
                s["name"].as_str().unwrap_or("")
            );
            sa == user
        }
        _ => false,
    };
    let allows = |role: &Value| {
        role["rules"].as_array().is_some_and(|rules| {
            rules.iter().any(|r| {
                let names = strs(r.get("resourceNames"));
                matches(&strs(r.get("apiGroups")), group)
                    && matches(&strs(r.get("resources")), resource)
                    && matches(&strs(r.get("verbs")), verb)
                    && (names.is_empty() || names.contains(&name))
            })
        })
    };
    objects.iter().any(|(r, binding)| {
        let in_scope = match r.kind.as_str() {
            "ClusterRoleBinding" => true,
            "RoleBinding" => r.namespace.as_deref() == Some(namespace) && !namespace.is_empty(),
            _ => false,
        };
        if r.api_version != RBAC || !in_scope {
            return false;
        }
        let subjects = binding["subjects"].as_array();
        if !subjects.is_some_and(|s| s.iter().any(is_subject)) {
            return false;
        }
        let kind = binding["roleRef"]["kind"].as_str().unwrap_or("");
        let role = ObjectRef {
            api_version: RBAC.into(),
            kind: kind.into(),
            namespace: (kind == "Role").then(|| r.namespace.clone()).flatten(),
            name: binding["roleRef"]["name"].as_str().unwrap_or("").into(),
        };
        objects.get(&role).is_some_and(allows)
    })
}
