//! The `mke3-rbac-export.json` format: the MKE 3 access model as read from the MKE 3 API.
//!
//! Every type here uses the API's own JSON names (`isOrg`, `orgID`, `system_role`,
//! `parent_ids`, ...), so a client can append each page of a list call to the matching array
//! without reshaping it. Unknown fields are ignored: MKE 3.7/3.8 returns more fields than the
//! UCP 3.2 specification documents. Fields the API may omit carry `#[serde(default)]`; the
//! fields ferry cannot work without (`name`, `id`, `isOrg`, grant IDs) are required, so a
//! truncated or hand-edited export fails with the JSON path of the missing field instead of
//! being translated into something silently wrong.
//!
//! The format is documented for users in `docs/formats.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::RbacError;

/// The only export version this crate reads and writes.
pub const EXPORT_VERSION: u32 = 1;

/// The whole export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Format version; always [`EXPORT_VERSION`].
    pub version: u32,
    /// `.accounts` of every page of `GET /enzi/v0/accounts?filter=all`: users and
    /// organisations.
    pub accounts: Vec<Account>,
    /// Per organisation name: its members and its teams with their members.
    #[serde(default)]
    pub orgs: BTreeMap<String, OrgExport>,
    /// `GET /roles`.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Every page of `GET /collections`.
    #[serde(default)]
    pub collections: Vec<Collection>,
    /// `.grants` of every page of `GET /collectionGrants?subjectType=all&showPaths=true`.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl Export {
    /// Parses an export from JSON text. Errors carry the JSON path of the offending value
    /// (`accounts[3].isOrg`) and its line and column.
    pub fn from_json(text: &str) -> Result<Export, RbacError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let export: Export = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = (inner.line(), inner.column());
            // serde_json appends " at line L column C" to its message; the position is kept in
            // its own fields, so strip it to avoid printing it twice.
            let full = inner.to_string();
            let message = full
                .strip_suffix(&format!(" at line {line} column {column}"))
                .unwrap_or(&full)
                .to_string();
            RbacError::Json {
                path,
                line,
                column,
                message,
            }
        })?;
        export.check_version()?;
        Ok(export)
    }

    /// Fails unless the export has the version this crate understands.
    pub fn check_version(&self) -> Result<(), RbacError> {
        if self.version == EXPORT_VERSION {
            Ok(())
        } else {
            Err(RbacError::UnsupportedVersion {
                found: self.version,
                supported: EXPORT_VERSION,
            })
        }
    }
}

fn yes() -> bool {
    true
}

/// `responses.Account`: a user or an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub id: String,
    #[serde(rename = "fullName", default)]
    pub full_name: String,
    #[serde(rename = "isOrg")]
    pub is_org: bool,
    /// System administrator (users only).
    #[serde(rename = "isAdmin", default)]
    pub is_admin: bool,
    /// Absent is read as active: eNZi deactivates accounts explicitly, and reading an absent
    /// flag as "inactive" would silently drop every user of an export that lacks it.
    #[serde(rename = "isActive", default = "yes")]
    pub is_active: bool,
    #[serde(rename = "isImported", default)]
    pub is_imported: bool,
    #[serde(rename = "membersCount", default)]
    pub members_count: u64,
    #[serde(rename = "teamsCount", default)]
    pub teams_count: u64,
    #[serde(rename = "onDemand", default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<bool>,
    #[serde(
        rename = "otpEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub otp_enabled: Option<bool>,
}

/// `responses.Member`: one entry of an organisation's or a team's member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member: Account,
    /// Organisation or team admin flag (not the system-admin flag, which is `member.isAdmin`).
    #[serde(rename = "isAdmin", default)]
    pub is_admin: bool,
}

/// `responses.Team`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    #[serde(rename = "orgID", default)]
    pub org_id: String,
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "membersCount", default)]
    pub members_count: u64,
}

/// One organisation: `GET /accounts/{org}/members` and, per team of
/// `GET /accounts/{org}/teams`, `GET /accounts/{org}/teams/{team}/members`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgExport {
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub teams: Vec<TeamExport>,
}

/// A team and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamExport {
    pub team: Team,
    #[serde(default)]
    pub members: Vec<Member>,
}

/// `role.Role`. `operations` (resource type -> operation -> `[]`) is kept as JSON: ferry
/// re-creates Swarm roles without permissions and never interprets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub system_role: bool,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub operations: serde_json::Value,
}

/// `authz.Collection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub parent_ids: Vec<String>,
    #[serde(default)]
    pub label_constraints: Vec<LabelConstraint>,
    #[serde(default)]
    pub legacylabelkey: String,
    #[serde(default)]
    pub legacylabelvalue: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

/// One entry of a collection's `label_constraints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelConstraint {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub label_key: String,
    #[serde(default)]
    pub label_value: String,
    #[serde(default)]
    pub equality: bool,
}

/// One entry of `.grants` of `GET /collectionGrants`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    /// An account ID (user or organisation), a team ID, a service account
    /// (`system:serviceaccount:<ns>:<name>`) or a special subject.
    #[serde(rename = "subjectID")]
    pub subject_id: String,
    /// A collection ID, the all-namespaces target `kubernetesnamespaces`, or a namespace.
    #[serde(rename = "objectID")]
    pub object_id: String,
    #[serde(rename = "roleID")]
    pub role_id: String,
    /// Present with `showPaths=true` on collection grants.
    #[serde(
        rename = "collectionPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collection_path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shapes_and_ignores_unknown_fields() {
        let text = r#"{
          "version": 1,
          "accounts": [
            {"fullName": "string", "id": "string", "isActive": true, "isAdmin": true,
             "isImported": true, "isOrg": true, "membersCount": 0, "name": "mynamespace",
             "teamsCount": 0, "somethingNew": {"x": 1}},
            {"name": "bob", "id": "8a3c", "fullName": "Bob", "isOrg": false}
          ],
          "orgs": {"mynamespace": {"members": [{"member": {"name": "bob", "id": "8a3c",
              "fullName": "", "isOrg": false, "isAdmin": false, "isActive": true},
              "isAdmin": false}],
            "teams": [{"team": {"orgID": "string", "name": "development", "id": "5d2e",
              "description": "", "membersCount": 1}, "members": []}]}},
          "roles": [{"name":"developer","id":"r1","system_role": false,"operations":
              {"Container":{"Container Attach": []}}}],
          "collections": [{"id": "a81c", "name": "prod", "path": "/prod",
              "parent_ids": ["swarm"], "label_constraints": [{"type": "", "label_key": "",
              "label_value": "", "equality": true}], "legacylabelkey": "",
              "legacylabelvalue": "", "created_at": "2019-01-01T00:00:00Z",
              "updated_at": "2019-01-01T00:00:00Z"}],
          "grants": [{"subjectID": "5d2e", "objectID": "a81c", "roleID": "fullcontrol",
              "collectionPath": "/prod"}]
        }"#;
        let export = Export::from_json(text).expect("valid export");
        assert_eq!(export.accounts.len(), 2);
        // An absent isActive reads as active, an absent isAdmin as not admin.
        assert!(export.accounts[1].is_active);
        assert!(!export.accounts[1].is_admin);
        assert_eq!(export.orgs["mynamespace"].teams[0].team.name, "development");
        assert_eq!(export.grants[0].collection_path.as_deref(), Some("/prod"));
    }

    #[test]
    fn a_wrong_shape_names_the_json_path() {
        let text = r#"{"version": 1, "accounts": [{"name": "a", "id": "1", "isOrg": "yes"}]}"#;
        match Export::from_json(text) {
            Err(RbacError::Json {
                path,
                line,
                message,
                ..
            }) => {
                assert_eq!(path, "accounts[0].isOrg");
                assert_eq!(line, 1);
                assert!(message.contains("expected a boolean"), "{message}");
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("expected a JSON error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_required_field_names_its_parent_path() {
        let text =
            r#"{"version": 1, "accounts": [], "grants": [{"subjectID": "x", "roleID": "r"}]}"#;
        match Export::from_json(text) {
            Err(RbacError::Json { path, message, .. }) => {
                assert_eq!(path, "grants[0]");
                assert!(message.contains("objectID"), "{message}");
            }
            other => panic!("expected a JSON error, got {other:?}"),
        }
    }

    #[test]
    fn another_version_is_refused() {
        let text = r#"{"version": 2, "accounts": []}"#;
        assert!(matches!(
            Export::from_json(text),
            Err(RbacError::UnsupportedVersion { found: 2, .. })
        ));
    }
}
