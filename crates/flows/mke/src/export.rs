//! [`export_rbac`]: the whole `mke3-rbac-export.json` model read page by page, the one export
//! `ferry mke3 export` and the upgrade's `mke.export-rbac` step both use.

use std::collections::HashSet;
use std::future::Future;

use crate::mke3::{Mke3Api, Mke3Error, Page};
use ferry_rbac::export::{EXPORT_VERSION, Export, OrgExport, TeamExport};

/// Follows every page of one list, refusing a server whose marker does not advance (which
/// would otherwise loop for ever).
async fn all_pages<T, F, Fut>(what: &str, mut fetch: F) -> Result<Vec<T>, Mke3Error>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, Mke3Error>>,
{
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut start: Option<String> = None;
    loop {
        let page = fetch(start.clone()).await?;
        items.extend(page.items);
        match page.next {
            None => return Ok(items),
            Some(next) => {
                if !seen.insert(next.clone()) || start.as_deref() == Some(next.as_str()) {
                    return Err(Mke3Error::Shape {
                        endpoint: what.to_string(),
                        detail: format!(
                            "the next-page marker {next:?} was already used: the paging does not advance"
                        ),
                    });
                }
                start = Some(next);
            }
        }
    }
}

/// Reads the whole access model in the order of `reference/mke3-api.md` §12: every account,
/// then per organisation its members and its teams with their members, the roles, the
/// collections and the grants, each list followed page by page with `page_size` items a page.
///
/// Nothing is returned unless every call succeeded, so a caller never writes a partial export.
pub async fn export_rbac(api: &dyn Mke3Api, page_size: u32) -> Result<Export, Mke3Error> {
    let limit = page_size.max(1);
    let accounts = all_pages("accounts", |s| async move {
        api.accounts(s.as_deref(), limit).await
    })
    .await?;

    let mut orgs = std::collections::BTreeMap::new();
    for org in accounts.iter().filter(|a| a.is_org) {
        let name = org.name.as_str();
        let members = all_pages(&format!("members of {name}"), |s| async move {
            api.org_members(name, s.as_deref(), limit).await
        })
        .await?;
        let teams = all_pages(&format!("teams of {name}"), |s| async move {
            api.teams(name, s.as_deref(), limit).await
        })
        .await?;
        let mut team_exports = Vec::with_capacity(teams.len());
        for team in teams {
            let team_name = team.name.as_str();
            let members = all_pages(
                &format!("members of team {name}/{team_name}"),
                |s| async move { api.team_members(name, team_name, s.as_deref(), limit).await },
            )
            .await?;
            team_exports.push(TeamExport { team, members });
        }
        orgs.insert(
            org.name.clone(),
            OrgExport {
                members,
                teams: team_exports,
            },
        );
    }

    let roles = api.roles().await?;
    let collections = all_pages("collections", |s| async move {
        api.collections(s.as_deref(), limit).await
    })
    .await?;
    let grants = all_pages("grants", |s| async move {
        api.grants(s.as_deref(), limit).await
    })
    .await?;

    Ok(Export {
        version: EXPORT_VERSION,
        accounts,
        orgs,
        roles,
        collections,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_marker_that_does_not_advance_is_an_error() {
        let mut calls = 0;
        let result: Result<Vec<u32>, _> = all_pages("things", |_| {
            calls += 1;
            async {
                Ok(Page {
                    items: vec![1],
                    next: Some("same".into()),
                })
            }
        })
        .await;
        match result {
            Err(Mke3Error::Shape { endpoint, detail }) => {
                assert_eq!(endpoint, "things");
                assert!(detail.contains("does not advance"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(calls, 2);
    }
}
