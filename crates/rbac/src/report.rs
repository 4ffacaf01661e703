//! What a translation found: counts, every grant with its class and result, and notes (renames,
//! inactive users, dropped membership admin flags, subjects not converted, dangling
//! references). Plus the Authentication and Authorization sections of the Upgrade Summary.

use std::fmt::Write as _;

use serde::Serialize;

/// The report of one translation. Lists are sorted, so equal inputs give equal reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Accounts with `isOrg: false`, active and inactive.
    pub users: usize,
    /// Accounts with `isOrg: true`.
    pub organizations: usize,
    /// Teams over all organisations.
    pub teams: usize,
    /// Organisations and teams of the export that could not be translated (an `orgs` entry
    /// whose organisation is not an account, with its teams).
    pub untranslated_orgs_and_teams: usize,
    /// Every distinct grant of the export, sorted by subject, role and object.
    pub grants: Vec<GrantRecord>,
    /// Everything else worth knowing, sorted by kind then message.
    pub notes: Vec<Note>,
}

/// One grant and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRecord {
    /// `org <name>`, `team <org>/<team>`, `user <name>`, `serviceaccount <ns>/<name>`,
    /// `group system:authenticated`, or the raw subject ID when it is not converted.
    pub subject: String,
    /// The MKE 3 role ID.
    pub role: String,
    /// The grant's `objectID`.
    pub object: String,
    /// The collection path for Swarm collection grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub class: GrantClass,
    pub outcome: GrantOutcome,
    /// The objects it became, or why it was not converted.
    pub detail: String,
}

/// What the grant's `objectID` designates (`rbac-mapping.md` section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantClass {
    SwarmCollection,
    AllNamespaces,
    Namespace,
    /// Not classified: the grant was refused before (unknown subject or role) or its object is
    /// neither a collection nor a namespace name.
    Unclassified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantOutcome {
    Converted,
    /// Not converted: a Swarm collection grant has no Kubernetes equivalent.
    NotConvertedSwarm,
    /// Not converted for another reason (see `detail`).
    NotConvertedOther,
}

/// A finding that is not a grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    /// A name got a hash to resolve a collision or avoid a reserved name.
    Rename,
    /// A name was changed by sanitising (case, characters, length).
    Sanitized,
    /// An inactive user was left out of every binding.
    InactiveUser,
    /// An organisation or team admin flag, which has no Kubernetes meaning, was dropped.
    MembershipAdmin,
    /// A grant subject type that is not converted (`anonymous`, `agent`).
    SubjectNotConverted,
    /// A reference to something the export does not contain.
    Dangling,
    /// The same entity appears twice in the export.
    Duplicate,
}

impl Note {
    pub fn new(kind: NoteKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl Report {
    pub fn grants_converted(&self) -> usize {
        self.count(GrantOutcome::Converted)
    }

    pub fn grants_not_converted_swarm(&self) -> usize {
        self.count(GrantOutcome::NotConvertedSwarm)
    }

    pub fn grants_not_converted_other(&self) -> usize {
        self.count(GrantOutcome::NotConvertedOther)
    }

    pub fn inactive_users(&self) -> usize {
        self.notes_of(NoteKind::InactiveUser)
    }

    pub fn renamed_objects(&self) -> usize {
        self.notes_of(NoteKind::Rename)
    }

    fn count(&self, outcome: GrantOutcome) -> usize {
        self.grants.iter().filter(|g| g.outcome == outcome).count()
    }

    fn notes_of(&self, kind: NoteKind) -> usize {
        self.notes.iter().filter(|n| n.kind == kind).count()
    }

    /// Sorts grants and notes into their documented order.
    pub(crate) fn sort(&mut self) {
        self.grants.sort();
        self.notes.sort();
        self.notes.dedup();
    }

    /// The Authentication and Authorization sections of the Upgrade Summary: the documented
    /// text and counts, then ferry's additional counts when they are not zero. Ends with a
    /// newline; the caller separates it from other sections with one empty line.
    pub fn summary_sections(&self) -> String {
        const DASHES: &str = "---------------";
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(s, "Authentication\n{DASHES}");
        let _ = writeln!(s, "Users found in the MKE3 cluster: {}", self.users);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "All users were upgraded to the MKE 4k cluster successfully."
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "Authorization\n{DASHES}");
        let _ = writeln!(
            s,
            "Organizations found in the MKE3 cluster: {}",
            self.organizations
        );
        let _ = writeln!(s, "Teams found in the MKE3 cluster: {}", self.teams);
        let _ = writeln!(s);
        if self.untranslated_orgs_and_teams == 0 {
            let _ = writeln!(
                s,
                "All organizations and teams were translated to aggregated roles in the MKE 4k \
                 cluster successfully."
            );
        } else {
            let _ = writeln!(
                s,
                "Some organizations and teams could not be translated to aggregated roles in the \
                 MKE 4k cluster: {}. See the report.",
                self.untranslated_orgs_and_teams
            );
        }
        let additions = [
            ("Grants converted", self.grants_converted()),
            (
                "Grants not converted (Swarm collections)",
                self.grants_not_converted_swarm(),
            ),
            (
                "Grants not converted (other)",
                self.grants_not_converted_other(),
            ),
            ("Inactive users left out of bindings", self.inactive_users()),
            ("Renamed objects", self.renamed_objects()),
        ];
        if additions.iter().any(|(_, n)| *n > 0) {
            let _ = writeln!(s);
            for (label, n) in additions {
                if n > 0 {
                    let _ = writeln!(s, "{label}: {n}");
                }
            }
        }
        s
    }

    /// The detailed report as text: every grant, then every note, one per line.
    pub fn details(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Grants ({}):", self.grants.len());
        for g in &self.grants {
            let object = match (&g.class, &g.path) {
                (GrantClass::SwarmCollection, Some(path)) => format!("collection {path}"),
                (GrantClass::AllNamespaces, _) => "all namespaces".to_string(),
                (GrantClass::Namespace, _) => format!("namespace {}", g.object),
                _ => g.object.clone(),
            };
            let outcome = match g.outcome {
                GrantOutcome::Converted => "converted",
                GrantOutcome::NotConvertedSwarm | GrantOutcome::NotConvertedOther => {
                    "not converted"
                }
            };
            let _ = writeln!(
                s,
                "  {} | role {} | {object} | {outcome}: {}",
                g.subject, g.role, g.detail
            );
        }
        let _ = writeln!(s, "Notes ({}):", self.notes.len());
        for n in &self.notes {
            let kind = match n.kind {
                NoteKind::Rename => "renamed",
                NoteKind::Sanitized => "sanitized",
                NoteKind::InactiveUser => "inactive user",
                NoteKind::MembershipAdmin => "membership admin flag",
                NoteKind::SubjectNotConverted => "subject not converted",
                NoteKind::Dangling => "dangling reference",
                NoteKind::Duplicate => "duplicate",
            };
            let _ = writeln!(s, "  {kind}: {}", n.message);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_without_findings_is_the_documented_text() {
        let report = Report {
            users: 1,
            organizations: 1,
            teams: 0,
            ..Default::default()
        };
        let expected = "Authentication\n---------------\nUsers found in the MKE3 cluster: \
            1\n\nAll users were upgraded to the MKE 4k cluster successfully.\n\nAuthorization\n\
            ---------------\nOrganizations found in the MKE3 cluster: 1\nTeams found in the MKE3 \
            cluster: 0\n\nAll organizations and teams were translated to aggregated roles in the \
            MKE 4k cluster successfully.\n";
        assert_eq!(report.summary_sections(), expected);
    }

    #[test]
    fn the_summary_is_a_verbatim_part_of_the_documented_sample() {
        // conversion-rules.md 10.2 / samples/mkectl-upgrade-summary.txt, Authentication and
        // Authorization sections.
        let sample = "Upgrade Summary\n---------------\n\nConfiguration file\n---------------\n\
            All MKE 3 TOML settings were successfully converted into MKE 4 YAML settings.\n\n\
            Authentication\n---------------\nUsers found in the MKE3 cluster: 1\n\nAll users were \
            upgraded to the MKE 4k cluster successfully.\n\nAuthorization\n---------------\n\
            Organizations found in the MKE3 cluster: 1\nTeams found in the MKE3 cluster: 0\n\nAll \
            organizations and teams were translated to aggregated roles in the MKE 4k cluster \
            successfully.\n\nPorts\n";
        let report = Report {
            users: 1,
            organizations: 1,
            ..Default::default()
        };
        assert!(sample.contains(&format!("\n{}\nPorts", report.summary_sections())));
    }

    #[test]
    fn additions_appear_only_when_not_zero_and_failure_replaces_the_success_line() {
        let report = Report {
            users: 3,
            organizations: 2,
            teams: 5,
            untranslated_orgs_and_teams: 2,
            grants: vec![GrantRecord {
                subject: "org a".into(),
                role: "viewonly".into(),
                object: "/prod".into(),
                path: Some("/prod".into()),
                class: GrantClass::SwarmCollection,
                outcome: GrantOutcome::NotConvertedSwarm,
                detail: "Swarm collection grant; no Kubernetes equivalent".into(),
            }],
            notes: vec![Note::new(NoteKind::InactiveUser, "user x")],
        };
        let text = report.summary_sections();
        assert!(text.contains(
            "Some organizations and teams could not be translated to aggregated roles in the MKE \
             4k cluster: 2. See the report.\n"
        ));
        assert!(!text.contains("successfully.\n\nGrants"));
        assert!(text.ends_with(
            "See the report.\n\nGrants not converted (Swarm collections): 1\nInactive users left \
             out of bindings: 1\n"
        ));
        assert!(!text.contains("Grants converted"));
        assert!(!text.contains("Renamed objects"));
    }
}
