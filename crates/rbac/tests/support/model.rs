//! What each MKE 3 user should be able to do after the migration, computed straight from the
//! export by the rules of `rbac-mapping.md` (and independently of ferry-rbac's translation):
//! a user holds every role granted to itself, to each organisation it belongs to (directly or
//! through a team), to each of its teams and to the authenticated group; all-namespaces grants
//! apply cluster-wide, namespace grants in their namespace only; Swarm collection grants, grants
//! with unknown roles and grants on invalid objects give nothing; inactive users get nothing;
//! active system admins get `cluster-admin`.
//!
//! The same model is the oracle of the real authorizer's test
//! (`crates/kube-api/tests/real_rbac.rs` includes this file by path): the in-test evaluator here
//! and kube-apiserver's RBAC authorizer answer to one statement of what MKE 3 implies.

use std::collections::{BTreeMap, BTreeSet};

use ferry_rbac::export::{Account, Export};

/// Expected MKE 3 role IDs per scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub cluster: BTreeSet<String>,
    pub namespaced: BTreeMap<String, BTreeSet<String>>,
}

/// A DNS-1123 label: what a Kubernetes namespace name must be.
pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| alnum(c) || *c == b'-')
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
}

/// The subject IDs that count as `subject_ids` for grants, and the grants' effect.
pub fn expected_for_subject_ids(export: &Export, subject_ids: &BTreeSet<String>) -> Expected {
    let roles: BTreeSet<&str> = export.roles.iter().map(|r| r.id.as_str()).collect();
    let collections: BTreeSet<&str> = export.collections.iter().map(|c| c.id.as_str()).collect();
    let mut e = Expected::default();
    for g in &export.grants {
        if !subject_ids.contains(&g.subject_id) || !roles.contains(g.role_id.as_str()) {
            continue;
        }
        let has_path = g.collection_path.as_deref().is_some_and(|p| !p.is_empty());
        if collections.contains(g.object_id.as_str()) || has_path {
            continue;
        }
        if g.object_id == "kubernetesnamespaces" {
            e.cluster.insert(g.role_id.clone());
        } else if is_label(&g.object_id) {
            e.namespaced
                .entry(g.object_id.clone())
                .or_default()
                .insert(g.role_id.clone());
        }
    }
    e
}

fn user_account<'a>(export: &'a Export, name: &str) -> Option<&'a Account> {
    export.accounts.iter().find(|a| !a.is_org && a.name == name)
}

/// Expected access of the user `name`, and whether it is an active system admin.
pub fn expected_for_user(export: &Export, name: &str) -> (Expected, bool) {
    let Some(user) = user_account(export, name) else {
        return (Expected::default(), false);
    };
    if !user.is_active {
        return (Expected::default(), false);
    }
    let is_me = |id: &str, n: &str| id == user.id || (id.is_empty() && n == user.name);
    let mut ids: BTreeSet<String> = BTreeSet::from([
        user.id.clone(),
        "authenticated".to_string(),
        "system:authenticated".to_string(),
    ]);
    for (org_name, org) in &export.orgs {
        let Some(org_account) = export
            .accounts
            .iter()
            .find(|a| a.is_org && &a.name == org_name)
        else {
            continue;
        };
        let mut in_org = org
            .members
            .iter()
            .any(|m| is_me(&m.member.id, &m.member.name));
        for t in &org.teams {
            if t.members
                .iter()
                .any(|m| is_me(&m.member.id, &m.member.name))
            {
                in_org = true;
                ids.insert(t.team.id.clone());
            }
        }
        if in_org {
            ids.insert(org_account.id.clone());
        }
    }
    (
        expected_for_subject_ids(export, &ids),
        user.is_admin && user.is_active,
    )
}

/// Expected access of a service account (it is also in `system:authenticated`).
pub fn expected_for_service_account(export: &Export, namespace: &str, name: &str) -> Expected {
    let ids = BTreeSet::from([
        format!("system:serviceaccount:{namespace}:{name}"),
        "authenticated".to_string(),
        "system:authenticated".to_string(),
    ]);
    expected_for_subject_ids(export, &ids)
}
