//! The steps: each moves the cluster from one state to the next, then waits until the
//! downstream cluster shows the state (each wait has a deadline and, when it runs out, says what
//! it still waited for); each undo moves it back and waits for the state before.
//!
//! The `Cluster`'s fields of every state are computed from the start's ([`crate::rke2`]), kept in
//! the state directory (they may hold secrets, so never in the journal); a step sets them only
//! when the object still holds the fields of one of ferry's states, so an edit made by someone
//! else in the meantime stops the run instead of being overwritten.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::ClusterApi;
use ferry_core::cluster::{ClusterError, ObjectRef};
use ferry_core::engine::{Reversibility, Step, StepError, StepKey, from_data, to_data};
use ferry_core::run::RunContext;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chart::{self, Ccm};
use crate::checks::{self, Start};
use crate::facts::{self, Facts, LeaseFact, UNINITIALIZED};
use crate::flow::Journaled;
use crate::leader;
use crate::rke::{self, RkeMarks};
use crate::rke2::{self, Fields, Marks};

/// The state directory file with the `Cluster`'s fields at the start.
pub const START_FIELDS: &str = "cloud-provider-cluster-start.json";
/// The state directory file with RKE's `cluster.yml` as it was at the start.
pub const START_YML: &str = "cloud-provider-cluster-start.yml";
/// The state directory file naming the apply command's process while it runs: a run that
/// resumes after ferry was killed waits for it rather than starting a second one.
pub const APPLY_PID: &str = "cloud-provider-apply.pid";

/// RKE's edits of a state, from the state's marks.
pub fn rke_marks(j: &Journaled, m: Marks) -> RkeMarks {
    RkeMarks {
        kcm_flag: m.kcm_flag,
        external: m.external,
        instance_metadata_hostname: j.rke.as_ref().and_then(|r| r.instance_metadata_hostname),
        version: m.version,
    }
}
/// The Role and RoleBinding that let both controller managers use the migration Lease.
pub const LEASE_ROLE: &str = "ferry:leader-migration";
/// The kube-controller-manager's identity.
pub const KCM_USER: &str = "system:kube-controller-manager";

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// S0: keep the start's fields, after checking the object still holds them.
    Record,
    /// S1: both managers may get and update the migration Lease (RBAC added if not).
    LeaseAccess,
    /// S1: the control-plane kube-controller-managers run with leader migration.
    LeaderMigration,
    /// S2: the control-plane nodes cordoned.
    Cordon,
    /// S3: the cloud-controller-manager installed with leader migration.
    CcmInstall,
    /// S4: the external provider.
    Switch,
    /// S5: the cloud-controller-manager without leader migration.
    CcmMigrationOff,
    /// S6: the cordon states of the start.
    Uncordon,
    /// S6: every node as at the start.
    Verify,
    /// The new Kubernetes version.
    Upgrade,
}

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::Record => "cloud.record",
            Kind::LeaseAccess => "cloud.lease-access",
            Kind::LeaderMigration => "cloud.kcm-leader-migration",
            Kind::Cordon => "cloud.cordon-control-plane",
            Kind::CcmInstall => "cloud.ccm-install",
            Kind::Switch => "cloud.external-provider",
            Kind::CcmMigrationOff => "cloud.ccm-leader-migration-off",
            Kind::Uncordon => "cloud.restore-cordon",
            Kind::Verify => "cloud.verify",
            Kind::Upgrade => "cloud.kubernetes-version",
        }
    }

    pub fn of(id: &str) -> Option<Kind> {
        [
            Kind::Record,
            Kind::LeaseAccess,
            Kind::LeaderMigration,
            Kind::Cordon,
            Kind::CcmInstall,
            Kind::Switch,
            Kind::CcmMigrationOff,
            Kind::Uncordon,
            Kind::Verify,
            Kind::Upgrade,
        ]
        .into_iter()
        .find(|k| k.id() == id)
    }

    /// The state this step reaches.
    pub fn state(self) -> &'static str {
        match self {
            Kind::Record => "S0",
            Kind::LeaseAccess | Kind::LeaderMigration => "S1",
            Kind::Cordon => "S2",
            Kind::CcmInstall => "S3",
            Kind::Switch => "S4",
            Kind::CcmMigrationOff => "S5",
            Kind::Uncordon | Kind::Verify => "S6",
            Kind::Upgrade => "upgrade",
        }
    }

    pub fn reversibility(self, version: &str) -> Reversibility {
        match self {
            Kind::Record | Kind::Verify => Reversibility::NoOp,
            Kind::Upgrade => Reversibility::Irreversible {
                why: format!(
                    "Rancher does not take a cluster back to an older Kubernetes version; the cluster stays on {version} with the external provider"
                ),
            },
            _ => Reversibility::Reversible,
        }
    }

    /// The marks of the `Cluster`'s fields once this step applied (for steps that set them).
    pub fn marks(self, j: &Journaled) -> Option<Marks> {
        let ccm_off = !j.keep_leader_migration;
        Some(match self {
            Kind::LeaderMigration => Marks {
                kcm_flag: true,
                ..Default::default()
            },
            Kind::CcmInstall => Marks {
                kcm_flag: true,
                ccm: Some(true),
                ..Default::default()
            },
            Kind::Switch => Marks {
                ccm: Some(true),
                external: true,
                ..Default::default()
            },
            Kind::CcmMigrationOff => Marks {
                ccm: Some(!ccm_off),
                external: true,
                ..Default::default()
            },
            Kind::Upgrade => Marks {
                ccm: Some(j.keep_leader_migration),
                external: true,
                version: j.kubernetes_version.clone(),
                ..Default::default()
            },
            _ => return None,
        })
    }

    /// The marks before this step (what its undo sets back).
    pub fn marks_before(self, j: &Journaled) -> Option<Marks> {
        Some(match self {
            Kind::LeaderMigration => Marks::default(),
            Kind::CcmInstall => Kind::LeaderMigration.marks(j)?,
            Kind::Switch => Kind::CcmInstall.marks(j)?,
            Kind::CcmMigrationOff => Kind::Switch.marks(j)?,
            Kind::Upgrade => {
                if j.keep_leader_migration {
                    Kind::Switch.marks(j)?
                } else {
                    Kind::CcmMigrationOff.marks(j)?
                }
            }
            _ => return None,
        })
    }
}

/// Every state's marks, to recognise ferry's own edits.
fn every_marks(j: &Journaled) -> Vec<Marks> {
    let mut v = vec![Marks::default()];
    for k in [
        Kind::LeaderMigration,
        Kind::CcmInstall,
        Kind::Switch,
        Kind::CcmMigrationOff,
        Kind::Upgrade,
    ] {
        if let Some(m) = k.marks(j) {
            v.push(m);
        }
    }
    v
}

/// One step of the migration.
#[derive(Debug)]
pub struct StateStep {
    pub key: StepKey,
    pub kind: Kind,
    pub j: Journaled,
    pub cx: RunContext,
    pub management: Option<Arc<dyn ClusterApi>>,
    /// The `Cluster`'s generation this step set: its waits also wait for Rancher to have rolled
    /// it out (`status.observedGeneration` and `ready`), so that a state is not taken as
    /// reached while Rancher still works through the machines.
    pub rollout: std::sync::Mutex<Option<i64>>,
}

/// What [`Kind::LeaseAccess`] added.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Access {
    created: bool,
}

fn role_ref(kind: &str) -> ObjectRef {
    ObjectRef {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: kind.into(),
        namespace: Some(leader::NAMESPACE.into()),
        name: LEASE_ROLE.into(),
    }
}

fn lease_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        namespace: Some(leader::NAMESPACE.into()),
        name: name.into(),
    }
}

/// The identities that take the migration Lease: (user, groups).
pub fn identities() -> [(String, Vec<String>); 2] {
    [
        (
            KCM_USER.to_string(),
            vec!["system:authenticated".to_string()],
        ),
        (
            format!(
                "system:serviceaccount:{}:{}",
                leader::NAMESPACE,
                chart::SERVICE_ACCOUNT
            ),
            vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{}", leader::NAMESPACE),
                "system:authenticated".to_string(),
            ],
        ),
    ]
}

/// Whether `user` may `verb` the migration Lease, by the API server's own authorizer.
pub async fn may(
    api: &dyn ClusterApi,
    user: &str,
    groups: &[String],
    verb: &str,
) -> Result<bool, ClusterError> {
    let answer = api
        .create(&json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": groups,
                "resourceAttributes": {
                    "namespace": leader::NAMESPACE,
                    "verb": verb,
                    "group": "coordination.k8s.io",
                    "resource": "leases",
                    "name": leader::LEASE,
                },
            },
        }))
        .await?;
    Ok(answer["status"]["allowed"].as_bool().unwrap_or(false))
}

/// Who may not get or update the migration Lease: `user verb` each.
pub async fn lease_access_missing(api: &dyn ClusterApi) -> Result<Vec<String>, ClusterError> {
    let mut missing = Vec::new();
    for (user, groups) in identities() {
        for verb in ["get", "update"] {
            if !may(api, &user, &groups, verb).await? {
                missing.push(format!(
                    "{user} may not {verb} Lease {}/{}",
                    leader::NAMESPACE,
                    leader::LEASE
                ));
            }
        }
    }
    Ok(missing)
}

impl StateStep {
    fn log(&self, message: impl Into<String>) {
        self.cx.log.info(message.into());
    }

    fn poll(&self) -> Duration {
        Duration::from_millis(self.j.poll_ms.max(100))
    }

    fn management(&self) -> Result<&Arc<dyn ClusterApi>, StepError> {
        self.management
            .as_ref()
            .ok_or_else(|| StepError::new("an RKE2 cluster needs the management cluster's API"))
    }

    fn ccm(&self) -> Ccm {
        self.j.ccm.clone()
    }

    async fn facts(&self) -> Result<Facts, StepError> {
        let mut f = facts::gather(self.cx.cluster.as_ref(), self.j.distro)
            .await
            .map_err(|e| StepError::from(e).context("read the downstream cluster"))?;
        if let Some(rke) = &self.j.rke {
            let conns = crate::flow::rke_connections(&self.cx, &rke.control_plane)?;
            f.kcm = facts::rke_managers(&conns).await.map_err(|e| {
                StepError::from(e).context("read the kube-controller-manager containers")
            })?;
        }
        Ok(f)
    }

    /// Waits until `missing` finds nothing, polling; transient API errors are waited out too.
    /// On the deadline, the error names the state and every condition still missing.
    async fn wait<F, Fut>(&self, state: &str, mut missing: F) -> Result<Facts, StepError>
    where
        F: FnMut(Facts) -> Fut + Send,
        Fut: std::future::Future<Output = Result<(Facts, Vec<String>), StepError>> + Send,
    {
        let deadline = Instant::now() + Duration::from_secs(self.j.state_timeout_secs);
        let mut last: Vec<String> = Vec::new();
        let mut said = false;
        // a state counts once two reads a poll apart both show it: a condition something else
        // undoes at once (a node uncordoned again) is not taken for reached
        let mut held = false;
        loop {
            match self.facts().await {
                Ok(f) => {
                    let (f, mut m) = missing(f).await?;
                    m.extend(self.rolled_out().await?);
                    if m.is_empty() {
                        if held {
                            return Ok(f);
                        }
                        held = true;
                        tokio::time::sleep(self.poll()).await;
                        continue;
                    }
                    held = false;
                    if !said || m != last {
                        self.log(format!("{state}: waiting for {}", m.join("; ")));
                        said = true;
                    }
                    last = m;
                }
                Err(e) if e.transient => {
                    held = false;
                    last = vec![format!("the downstream API ({})", e.chain())];
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(StepError::new(format!(
                    "{state} not reached within {}: still waiting for {}",
                    humanize(self.j.state_timeout_secs),
                    last.join("; ")
                )));
            }
            tokio::time::sleep(self.poll()).await;
        }
    }

    /// What Rancher has still to do for the generation this step set: nothing when it set none.
    async fn rolled_out(&self) -> Result<Vec<String>, StepError> {
        let Some(generation) = *self.rollout.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Ok(Vec::new());
        };
        let r = self.cluster_ref()?;
        let c = match self.management()?.get(&r).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err(StepError::new(format!(
                    "{r} is gone from the management cluster"
                )));
            }
            Err(e) if e.is_transient() => return Ok(vec![format!("the management cluster ({e})")]),
            Err(e) => return Err(StepError::from(e).context(format!("read {r}"))),
        };
        let observed = c["status"]["observedGeneration"].as_i64().unwrap_or(0);
        let ready = c["status"]["ready"].as_bool().unwrap_or(false);
        if observed >= generation && ready {
            return Ok(Vec::new());
        }
        let why = c["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["message"].as_str())
            .filter(|m| !m.is_empty())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        Ok(vec![format!(
            "Rancher to roll out generation {generation} of {r} (observed {observed}, ready {ready}{why})"
        )])
    }

    fn start(&self) -> &Start {
        &self.j.start
    }

    fn cluster_ref(&self) -> Result<ObjectRef, StepError> {
        let c = self
            .j
            .cluster
            .as_ref()
            .ok_or_else(|| StepError::new("no Rancher cluster in the journal"))?;
        Ok(ObjectRef {
            api_version: "provisioning.cattle.io/v1".into(),
            kind: "Cluster".into(),
            namespace: Some(c.namespace.clone()),
            name: c.name.clone(),
        })
    }

    fn start_fields(&self) -> Result<Fields, StepError> {
        let bytes = self.cx.state.read(START_FIELDS)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StepError::caused(format!("{START_FIELDS} is not valid"), e, false))
    }

    async fn read_fields(&self) -> Result<(Fields, String), StepError> {
        let r = self.cluster_ref()?;
        let c = self
            .management()?
            .get(&r)
            .await
            .map_err(|e| StepError::from(e).context(format!("read {r}")))?
            .ok_or_else(|| StepError::new(format!("{r} is gone from the management cluster")))?;
        let rv = c["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        Ok((Fields::read(&c), rv))
    }

    /// Notes the `Cluster`'s generation now, for [`Self::rolled_out`].
    async fn await_generation(&self) -> Result<(), StepError> {
        let r = self.cluster_ref()?;
        let c = self
            .management()?
            .get(&r)
            .await
            .map_err(|e| StepError::from(e).context(format!("read {r}")))?
            .ok_or_else(|| StepError::new(format!("{r} is gone from the management cluster")))?;
        *self.rollout.lock().unwrap_or_else(|e| e.into_inner()) =
            c["metadata"]["generation"].as_i64();
        Ok(())
    }

    /// Keeps the start's fields, once: the object must still hold what the plan read.
    async fn record(&self) -> Result<(), StepError> {
        if let Some(rke) = &self.j.rke {
            return self.record_rke(rke);
        }
        if self.j.cluster.is_none() {
            return Ok(());
        }
        if let Ok(bytes) = self.cx.state.read(START_FIELDS) {
            if serde_json::from_slice::<Fields>(&bytes)
                .is_ok_and(|f| digest(&f) == self.j.fields_digest)
            {
                return Ok(());
            }
        }
        let (now, _) = self.read_fields().await?;
        if digest(&now) != self.j.fields_digest {
            return Err(StepError::new(format!(
                "{} changed since the plan was made: plan again",
                self.cluster_ref()?
            )));
        }
        let bytes = serde_json::to_vec_pretty(&now)
            .map_err(|e| StepError::caused("encode the start's fields", e, false))?;
        self.cx.state.write(START_FIELDS, &bytes)?;
        self.log(format!(
            "S0: {} recorded ({} nodes, {} control-plane, provider IDs and cordon states kept)",
            self.cluster_ref()?,
            self.start().nodes.len(),
            self.start().control_plane().len()
        ));
        Ok(())
    }

    /// Sets the `Cluster`'s fields of this step's state (`forward`), or of the state before it.
    async fn move_fields(&self, forward: bool) -> Result<(), StepError> {
        if self.j.rke.is_some() {
            return self.move_rke(forward).await;
        }
        let after = self.kind.marks(&self.j).unwrap_or_default();
        let before = self.kind.marks_before(&self.j).unwrap_or_default();
        if forward {
            self.set_fields(&after, &before).await
        } else {
            self.set_fields(&before, &after).await
        }
    }

    /// Sets the `Cluster`'s fields to those of `marks`, if it holds one of ferry's states.
    async fn set_fields(&self, marks: &Marks, expected: &Marks) -> Result<(), StepError> {
        let start = self.start_fields()?;
        let ccm = self.ccm();
        let desired =
            |m: &Marks| rke2::desired(&start, m, &ccm).map_err(|e| StepError::new(e.to_string()));
        let target = desired(marks)?;
        let known: Vec<Fields> = every_marks(&self.j)
            .iter()
            .map(desired)
            .collect::<Result<_, _>>()?;
        let r = self.cluster_ref()?;
        for _ in 0..5 {
            let (now, rv) = self.read_fields().await?;
            if now == target {
                self.await_generation().await?;
                return Ok(());
            }
            if !known.contains(&now) {
                let differ = now.differences(&desired(expected)?);
                return Err(StepError::new(format!(
                    "{r} was changed outside ferry ({}): ferry leaves it alone; put those fields back, then `ferry resume` or `ferry rollback`",
                    differ.join(", ")
                )));
            }
            let changed = now.differences(&target);
            match self
                .management()?
                .apply_forced(&target.apply_object(
                    &r.name,
                    r.namespace.as_deref().unwrap_or(""),
                    &rv,
                ))
                .await
            {
                Ok(()) => {
                    self.log(format!("{r}: set {}", changed.join(", ")));
                    self.await_generation().await?;
                    return Ok(());
                }
                // changed between the read and the write (Rancher writes its status): read again
                Err(ClusterError::Conflict(_)) => continue,
                Err(e) => return Err(StepError::from(e).context(format!("apply {r}"))),
            }
        }
        Err(StepError::transient(format!(
            "{r} kept changing while ferry set its fields"
        )))
    }

    fn rke(&self) -> Result<&crate::flow::RkeJournaled, StepError> {
        self.j
            .rke
            .as_ref()
            .ok_or_else(|| StepError::new("no RKE cluster in the journal"))
    }

    /// RKE's S0: a copy of `cluster.yml` as it is at the start, once; the file must still be
    /// what the plan read.
    fn record_rke(&self, rke: &crate::flow::RkeJournaled) -> Result<(), StepError> {
        if let Ok(bytes) = self.cx.state.read(START_YML) {
            if digest_text(&String::from_utf8_lossy(&bytes)) == rke.text_digest {
                return Ok(());
            }
        }
        let file = rke.cluster_yml.display();
        let now = std::fs::read_to_string(&rke.cluster_yml)
            .map_err(|e| StepError::caused(format!("read {file}"), e, false))?;
        if digest_text(&now) != rke.text_digest {
            return Err(StepError::new(format!(
                "{file} changed since the plan was made: plan again"
            )));
        }
        self.cx.state.write(START_YML, now.as_bytes())?;
        self.log(format!(
            "S0: {file} kept as it is ({} nodes, {} control-plane, provider IDs and cordon states recorded)",
            self.start().nodes.len(),
            self.start().control_plane().len()
        ));
        Ok(())
    }

    /// RKE: `cluster.yml` of this step's state (`forward`) or of the state before it, then the
    /// apply command, then the cordon states that state keeps (`rke up` uncordons the nodes it
    /// upgrades). A step that does not change the file (the cloud-controller-manager's) does
    /// nothing here. The file is only written when it holds one of ferry's states.
    async fn move_rke(&self, forward: bool) -> Result<(), StepError> {
        let rke = self.rke()?;
        let file = rke.cluster_yml.display().to_string();
        let start = String::from_utf8_lossy(&self.cx.state.read(START_YML)?).into_owned();
        let text = |m: Marks| {
            rke::text_at(&file, &start, &rke_marks(&self.j, m))
                .map_err(|e| StepError::new(e.to_string()))
        };
        let after = text(self.kind.marks(&self.j).unwrap_or_default())?;
        let before = text(self.kind.marks_before(&self.j).unwrap_or_default())?;
        if after == before {
            return Ok(());
        }
        let (target, state) = if forward {
            (after, self.kind.state())
        } else {
            (before, self.state_before())
        };
        let now = std::fs::read_to_string(&rke.cluster_yml)
            .map_err(|e| StepError::caused(format!("read {file}"), e, false))?;
        if now != target {
            let known: Vec<String> = every_marks(&self.j)
                .into_iter()
                .map(text)
                .collect::<Result<_, _>>()?;
            if !known.contains(&now) {
                return Err(StepError::new(format!(
                    "{file} was changed outside ferry: ferry leaves it alone; put it back as it was (the start's copy is {} in the state directory), then `ferry resume` or `ferry rollback`",
                    START_YML
                )));
            }
            write_atomically(&rke.cluster_yml, &target)
                .map_err(|e| StepError::caused(format!("write {file}"), e, false))?;
            self.log(format!("{state}: {file} written"));
        }
        self.run_apply(state).await?;
        // the state's cordon states: the control plane stays cordoned from S2 to S5
        let cordoned = matches!(self.kind, Kind::Switch);
        self.put_cordons(state, cordoned).await
    }

    /// The state the undo of this step goes back to.
    fn state_before(&self) -> &'static str {
        match self.kind {
            Kind::LeaseAccess | Kind::LeaderMigration => "S0",
            Kind::Cordon => "S1",
            Kind::CcmInstall => "S2",
            Kind::Switch => "S3",
            Kind::CcmMigrationOff => "S4",
            Kind::Uncordon | Kind::Verify => "S5",
            Kind::Record => "S0",
            Kind::Upgrade => "S6",
        }
    }

    /// Every node's cordon state as at the start, the control plane cordoned when `cp`.
    async fn put_cordons(&self, state: &str, cp: bool) -> Result<(), StepError> {
        let f = self.facts().await?;
        for n in &self.start().nodes {
            let want = n.unschedulable || (cp && n.control_plane);
            let Some(now) = f.node(&n.name) else { continue };
            if now.unschedulable == want {
                continue;
            }
            if want {
                self.cx.cluster.cordon(&n.name).await?;
            } else {
                self.cx.cluster.uncordon(&n.name).await?;
            }
            self.log(format!(
                "{state}: node {} {} again, as the state keeps it",
                n.name,
                if want { "cordoned" } else { "uncordoned" }
            ));
        }
        Ok(())
    }

    /// Runs the apply command (`sh -c`) in `cluster.yml`'s directory, its output logged line by
    /// line; waits first for one a killed ferry left running. Fails when it exits non-zero or
    /// outlasts the state's deadline.
    async fn run_apply(&self, state: &str) -> Result<(), StepError> {
        let rke = self.rke()?;
        self.wait_earlier_apply(state).await?;
        let dir = rke
            .cluster_yml
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        self.log(format!("{state}: running `{}`", rke.apply_command));
        let started = Instant::now();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&rke.apply_command)
            .current_dir(&dir)
            .env("FERRY_CLUSTER_YML", &rke.cluster_yml)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StepError::caused("start the apply command with sh", e, false))?;
        let pid = child.id().unwrap_or(0);
        let mut group = GroupGuard { pid, done: false };
        self.cx
            .state
            .write(APPLY_PID, process_mark(pid).unwrap_or_default().as_bytes())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        use tokio::io::AsyncBufReadExt as _;
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(l);
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(l);
                }
            });
        }
        drop(tx);
        let deadline = Duration::from_secs(self.j.state_timeout_secs);
        let mut last: std::collections::VecDeque<String> = Default::default();
        let logged = async {
            while let Some(l) = rx.recv().await {
                self.log(format!("{state}: apply: {l}"));
                if last.len() == 5 {
                    last.pop_front();
                }
                last.push_back(l);
            }
            child.wait().await
        };
        let status = match tokio::time::timeout(deadline, logged).await {
            Ok(s) => s.map_err(|e| StepError::caused("wait for the apply command", e, false))?,
            Err(_) => {
                return Err(StepError::new(format!(
                    "{state}: `{}` did not finish within {}: stopped",
                    rke.apply_command,
                    humanize(self.j.state_timeout_secs)
                )));
            }
        };
        group.done = true;
        let _ = std::fs::remove_file(self.cx.state.path().join(APPLY_PID));
        if !status.success() {
            return Err(StepError::new(format!(
                "{state}: `{}` exited with {}{}",
                rke.apply_command,
                status
                    .code()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "a signal".into()),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {}", last.iter().cloned().collect::<Vec<_>>().join(" | "))
                }
            )));
        }
        self.log(format!(
            "{state}: `{}` finished in {} s",
            rke.apply_command,
            started.elapsed().as_secs()
        ));
        Ok(())
    }

    /// An apply command a killed ferry left running: waited for (up to the state's deadline).
    async fn wait_earlier_apply(&self, state: &str) -> Result<(), StepError> {
        let Ok(bytes) = self.cx.state.read(APPLY_PID) else {
            return Ok(());
        };
        let mark = String::from_utf8_lossy(&bytes).trim().to_string();
        let pid: u32 = mark
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(self.j.state_timeout_secs);
        let mut said = false;
        while pid != 0 && process_mark(pid).as_deref() == Some(mark.as_str()) {
            if !said {
                self.log(format!(
                    "{state}: the apply command an earlier run started (process {pid}) still runs: waiting for it"
                ));
                said = true;
            }
            if Instant::now() >= deadline {
                return Err(StepError::new(format!(
                    "{state}: the apply command an earlier run started (process {pid}) still runs after {}",
                    humanize(self.j.state_timeout_secs)
                )));
            }
            tokio::time::sleep(self.poll()).await;
        }
        let _ = std::fs::remove_file(self.cx.state.path().join(APPLY_PID));
        Ok(())
    }

    /// RKE's cloud-controller-manager: the chart's objects applied by ferry, with or without
    /// leader migration; a leader migration ConfigMap no longer needed is removed.
    async fn apply_ccm(&self, state: &str, migration: bool) -> Result<(), StepError> {
        let mut c = self.ccm();
        c.leader_migration = migration;
        let objects = c.objects();
        for o in &objects {
            self.cx.cluster.apply(o).await?;
        }
        if c.config_map().is_none() {
            self.delete_ours(&[cm_ref()]).await?;
        }
        self.log(format!(
            "{state}: {} objects of the {} chart applied ({} leader migration)",
            objects.len(),
            chart::NAME,
            if migration { "with" } else { "without" }
        ));
        Ok(())
    }

    /// Deletes each object that carries ferry's label.
    async fn delete_ours(&self, refs: &[ObjectRef]) -> Result<(), StepError> {
        for r in refs {
            let ours = self
                .cx
                .cluster
                .get(r)
                .await?
                .is_some_and(|o| o["metadata"]["labels"][chart::MANAGED_BY] == "ferry");
            if ours && self.cx.cluster.delete(r).await? {
                self.log(format!("{r} removed"));
            }
        }
        Ok(())
    }

    /// Leader migration on: both managers may use the Lease.
    async fn lease_access(&self) -> Result<Value, StepError> {
        let api = self.cx.cluster.as_ref();
        let missing = lease_access_missing(api).await?;
        if missing.is_empty() {
            self.log(format!(
                "S1: both controller managers may get and update Lease {}/{} already",
                leader::NAMESPACE,
                leader::LEASE
            ));
            return to_data(&Access { created: false });
        }
        self.log(format!(
            "S1: {}; adding Role and RoleBinding {LEASE_ROLE}",
            missing.join("; ")
        ));
        let (kcm, _) = identities()[0].clone();
        let labels = json!({"app.kubernetes.io/managed-by": "ferry"});
        api.apply(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": LEASE_ROLE, "namespace": leader::NAMESPACE, "labels": labels},
            "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [leader::LEASE], "verbs": ["get", "update", "patch"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "list", "watch"]},
            ],
        }))
        .await?;
        api.apply(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": LEASE_ROLE, "namespace": leader::NAMESPACE, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": kcm},
                {"kind": "ServiceAccount", "name": chart::SERVICE_ACCOUNT, "namespace": leader::NAMESPACE},
            ],
        }))
        .await?;
        // the authorizer reads the new grant from its cache
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = lease_access_missing(api).await?;
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(StepError::new(format!(
                    "S1: after adding {LEASE_ROLE}: {}",
                    left.join("; ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.log(format!(
            "S1: both controller managers may get and update Lease {}/{}",
            leader::NAMESPACE,
            leader::LEASE
        ));
        to_data(&Access { created: true })
    }

    async fn lease_access_undo(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        let created = from_data::<Access>(data)
            .map(|a| a.created)
            .unwrap_or(false);
        if !created && !partial {
            return Ok(());
        }
        let api = self.cx.cluster.as_ref();
        for kind in ["RoleBinding", "Role"] {
            let r = role_ref(kind);
            // only what ferry made: a partial apply may have stopped before
            let ours = api.get(&r).await?.is_some_and(|o| {
                o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ferry"
            });
            if ours && api.delete(&r).await? {
                self.log(format!("S0: {r} removed"));
            }
        }
        Ok(())
    }

    async fn leader_migration(&self) -> Result<(), StepError> {
        self.move_fields(true).await?;
        let start = self.start().clone();
        let f = self
            .wait("S1", |f| {
                let start = start.clone();
                async move {
                    let mut m = checks::managers(&f, &start, "aws", true);
                    m.extend(checks::migration_lease_held(&f, &start));
                    Ok((f, m))
                }
            })
            .await?;
        self.log(format!(
            "S1 reached: every control-plane kube-controller-manager runs with leader migration; Lease {}/{} held by {}",
            leader::NAMESPACE,
            leader::LEASE,
            f.migration_lease.map(|l| l.holder).unwrap_or_default()
        ));
        Ok(())
    }

    async fn leader_migration_undo(&self) -> Result<(), StepError> {
        self.move_fields(false).await?;
        let start = self.start().clone();
        self.wait("S0", |f| {
            let start = start.clone();
            async move {
                let m = checks::managers_as_at_start(&f, &start);
                Ok((f, m))
            }
        })
        .await?;
        // nobody renews it now; it was not there at the start
        if self.cx.cluster.delete(&lease_ref(leader::LEASE)).await? {
            self.log(format!(
                "S0: Lease {}/{} removed",
                leader::NAMESPACE,
                leader::LEASE
            ));
        }
        self.log("S0 reached: every control-plane kube-controller-manager runs as at the start");
        Ok(())
    }

    async fn cordon(&self, on: bool) -> Result<(), StepError> {
        let start = self.start().clone();
        for n in &start.nodes {
            if !n.control_plane {
                continue;
            }
            if on {
                self.cx.cluster.cordon(&n.name).await?;
            } else if !n.unschedulable {
                self.cx.cluster.uncordon(&n.name).await?;
            }
        }
        let state = if on { "S2" } else { "S6" };
        self.wait(state, |f| {
            let start = start.clone();
            async move {
                let m = if on {
                    checks::cordoned(&f, &start)
                } else {
                    checks::cordon_as_at_start(&f, &start)
                };
                Ok((f, m))
            }
        })
        .await?;
        self.log(if on {
            format!(
                "S2 reached: control-plane nodes cordoned ({})",
                start.control_plane().join(", ")
            )
        } else {
            "S6: every node's cordon state is as at the start".to_string()
        });
        Ok(())
    }

    async fn cordon_undo(&self) -> Result<(), StepError> {
        let start = self.start().clone();
        for n in start
            .nodes
            .iter()
            .filter(|n| n.control_plane && !n.unschedulable)
        {
            self.cx.cluster.uncordon(&n.name).await?;
        }
        self.wait("S1", |f| {
            let start = start.clone();
            async move {
                let m = checks::cordon_as_at_start(&f, &start);
                Ok((f, m))
            }
        })
        .await?;
        self.log("S1: control-plane cordon states as at the start");
        Ok(())
    }

    async fn ccm_running(&self, state: &str, migration: bool) -> Result<(), StepError> {
        let start = self.start().clone();
        self.wait(state, |f| {
            let start = start.clone();
            async move {
                let mut m = checks::ccm_running(&f, &start, migration);
                // S2 holds until S6 gives the cordon states back
                m.extend(checks::cordoned(&f, &start));
                Ok((f, m))
            }
        })
        .await?;
        self.log(format!(
            "{state} reached: DaemonSet {}/{} rolled out {} leader migration, Lease {}/{} held",
            leader::NAMESPACE,
            chart::NAME,
            if migration { "with" } else { "without" },
            leader::NAMESPACE,
            chart::OWN_LEASE
        ));
        Ok(())
    }

    async fn ccm_install(&self) -> Result<(), StepError> {
        if self.j.rke.is_some() {
            self.apply_ccm("S3", true).await?;
        } else {
            self.move_fields(true).await?;
        }
        self.ccm_running("S3", true).await
    }

    async fn ccm_install_undo(&self) -> Result<(), StepError> {
        if self.j.rke.is_some() {
            let mut c = self.ccm();
            c.leader_migration = true;
            let mut refs: Vec<ObjectRef> = c.objects().iter().rev().map(object_ref).collect();
            refs.push(cm_ref());
            self.delete_ours(&refs).await?;
        } else {
            self.move_fields(false).await?;
        }
        self.wait("S2", |f| async move {
            let m = checks::ccm_gone(&f);
            Ok((f, m))
        })
        .await?;
        if self.cx.cluster.delete(&lease_ref(chart::OWN_LEASE)).await? {
            self.log(format!(
                "S2: Lease {}/{} removed",
                leader::NAMESPACE,
                chart::OWN_LEASE
            ));
        }
        self.log("S2: the cloud-controller-manager is gone");
        Ok(())
    }

    async fn switch(&self) -> Result<(), StepError> {
        self.move_fields(true).await?;
        let start = self.start().clone();
        // once every kube-controller-manager is external, only a cloud-controller-manager
        // renews the migration Lease: it must be renewed after that moment
        let mut switched: Option<Option<LeaseFact>> = None;
        let f = self
            .wait("S4", |f| {
                let start = start.clone();
                let seen = switched.clone();
                let mut mark = |v: Option<LeaseFact>| switched = Some(v);
                let mut m = checks::managers(&f, &start, "external", false);
                if m.is_empty() {
                    match &seen {
                        None => {
                            mark(f.migration_lease.clone());
                            m.push(format!("Lease {}/{} to be renewed by the cloud-controller-manager", leader::NAMESPACE, leader::LEASE));
                        }
                        Some(before) => {
                            if !checks::renewed_since(before.as_ref(), f.migration_lease.as_ref()) {
                                m.push(format!(
                                    "Lease {}/{} to be renewed by the cloud-controller-manager (no kube-controller-manager takes it now)",
                                    leader::NAMESPACE,
                                    leader::LEASE
                                ));
                            }
                        }
                    }
                }
                m.extend(checks::initialised(&f));
                m.extend(checks::load_balancers_kept(&f, &start));
                m.extend(checks::cordoned(&f, &start));
                async move { Ok((f, m)) }
            })
            .await?;
        self.log(format!(
            "S4 reached: every kube-controller-manager runs --cloud-provider=external; Lease {}/{} held by the cloud-controller-manager ({}); no node left uninitialised; {} LoadBalancer Service(s) kept their addresses",
            leader::NAMESPACE,
            leader::LEASE,
            f.migration_lease.map(|l| l.holder).unwrap_or_default(),
            start.load_balancers.len()
        ));
        Ok(())
    }

    async fn switch_undo(&self) -> Result<(), StepError> {
        self.move_fields(false).await?;
        let start = self.start().clone();
        self.wait("S3", |f| {
            let start = start.clone();
            async move {
                let m = checks::managers(&f, &start, "aws", true);
                Ok((f, m))
            }
        })
        .await?;
        self.repair_nodes().await?;
        self.log("S3: every control-plane kube-controller-manager runs the in-tree provider with leader migration again");
        Ok(())
    }

    /// Nodes that registered again under the external provider: their provider ID back (a
    /// Node's provider ID may go from empty to a value) and the `uninitialized` taint gone, as
    /// at the start; the in-tree provider does neither for a Node that exists.
    async fn repair_nodes(&self) -> Result<(), StepError> {
        let f = self.facts().await?;
        for n in &self.start().nodes {
            let Some(now) = f.node(&n.name) else { continue };
            let lost_id = now.provider_id.is_empty() && !n.provider_id.is_empty();
            let tainted = now.taints.iter().any(|t| t.starts_with(UNINITIALIZED))
                && !n.taints.iter().any(|t| t.starts_with(UNINITIALIZED));
            if !lost_id && !tainted {
                continue;
            }
            let node = ObjectRef {
                api_version: "v1".into(),
                kind: "Node".into(),
                namespace: None,
                name: n.name.clone(),
            };
            let current = self.cx.cluster.get(&node).await?.unwrap_or(Value::Null);
            let mut spec = json!({});
            if lost_id {
                spec["providerID"] = n.provider_id.clone().into();
            }
            if tainted {
                let left: Vec<Value> = current["spec"]["taints"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|t| t["key"] != UNINITIALIZED)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                spec["taints"] = Value::Array(left);
            }
            self.cx
                .cluster
                .merge_patch(&node, &json!({ "spec": spec }))
                .await?;
            self.log(format!(
                "node {}: {}",
                n.name,
                match (lost_id, tainted) {
                    (true, true) => format!(
                        "provider ID {} set back and the {UNINITIALIZED} taint removed",
                        n.provider_id
                    ),
                    (true, false) => format!("provider ID {} set back", n.provider_id),
                    _ => format!("the {UNINITIALIZED} taint removed"),
                }
            ));
        }
        Ok(())
    }

    async fn ccm_migration_off(&self) -> Result<(), StepError> {
        if self.j.rke.is_some() {
            self.apply_ccm("S5", false).await?;
        } else {
            self.move_fields(true).await?;
        }
        self.ccm_running("S5", false).await
    }

    async fn ccm_migration_off_undo(&self) -> Result<(), StepError> {
        if self.j.rke.is_some() {
            self.apply_ccm("S4", true).await?;
        } else {
            self.move_fields(false).await?;
        }
        self.ccm_running("S4", true).await
    }

    async fn verify(&self) -> Result<(), StepError> {
        let start = self.start().clone();
        let f = self
            .wait("S6", |f| {
                let start = start.clone();
                async move {
                    let m = checks::end(&f, &start);
                    Ok((f, m))
                }
            })
            .await?;
        self.log(format!(
            "S6 reached: {} nodes under their names with the provider IDs of the start, none twice, cordon states as at the start",
            f.nodes.len()
        ));
        Ok(())
    }

    async fn upgrade(&self) -> Result<(), StepError> {
        let j = &self.j;
        self.move_fields(true).await?;
        let want = j.kubernetes_version.clone().unwrap_or_default();
        let start = self.start().clone();
        self.wait("upgrade", |f| {
            let start = start.clone();
            let want = want.clone();
            async move {
                let want_v = crate::leader::Version::parse(&want);
                let mut m: Vec<String> = f
                    .nodes
                    .iter()
                    // RKE's `v1.27.16-rancher1-1` is a kubelet's `v1.27.16`
                    .filter(|n| {
                        n.kubelet_version != want
                            && (want_v.is_none()
                                || crate::leader::Version::parse(&n.kubelet_version) != want_v)
                    })
                    .map(|n| {
                        format!(
                            "node {} to run {want}: it runs {}",
                            n.name, n.kubelet_version
                        )
                    })
                    .collect();
                m.extend(checks::managers(&f, &start, "external", false));
                Ok((f, m))
            }
        })
        .await?;
        self.log(format!("every node runs {want}"));
        Ok(())
    }
}

fn humanize(secs: u64) -> String {
    if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The digest of a text (SHA-256).
pub fn digest_text(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `path` replaced by `text` at once: a temporary file beside it (same permissions), renamed.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".ferry-tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    if let Ok(m) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, m.permissions())?;
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `pid` with its start time (`/proc/<pid>/stat`, field 22), so that a recycled pid is not
/// taken for the process; `None` when it is gone.
fn process_mark(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) may hold spaces: count from its closing parenthesis
    let rest = &stat[stat.rfind(')')? + 1..];
    let start = rest.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Stops the apply command's process group when its step is dropped before it finished (an
/// interrupt): the undo then applies the state before.
struct GroupGuard {
    pid: u32,
    done: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.done && self.pid != 0 {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", self.pid)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn object_ref(o: &Value) -> ObjectRef {
    ObjectRef {
        api_version: o["apiVersion"].as_str().unwrap_or("").into(),
        kind: o["kind"].as_str().unwrap_or("").into(),
        namespace: o["metadata"]["namespace"].as_str().map(str::to_string),
        name: o["metadata"]["name"].as_str().unwrap_or("").into(),
    }
}

fn cm_ref() -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(leader::NAMESPACE.into()),
        name: leader::CONFIG_MAP.into(),
    }
}

/// The digest of the start's fields (SHA-256 of their JSON), kept in the journal instead of
/// the fields themselves.
pub fn digest(f: &Fields) -> String {
    use sha2::Digest as _;
    let text = serde_json::to_string(f).unwrap_or_default();
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[async_trait::async_trait]
impl Step for StateStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    fn reversibility(&self) -> Reversibility {
        self.kind
            .reversibility(self.j.kubernetes_version.as_deref().unwrap_or(""))
    }

    fn resumes_by_reapplying(&self) -> bool {
        // every apply checks what is there first and waits for its state
        true
    }

    async fn apply(&self, _prepared: &Value) -> Result<Value, StepError> {
        match self.kind {
            Kind::Record => self.record().await?,
            Kind::LeaseAccess => return self.lease_access().await,
            Kind::LeaderMigration => self.leader_migration().await?,
            Kind::Cordon => self.cordon(true).await?,
            Kind::CcmInstall => self.ccm_install().await?,
            Kind::Switch => self.switch().await?,
            Kind::CcmMigrationOff => self.ccm_migration_off().await?,
            Kind::Uncordon => self.cordon(false).await?,
            Kind::Verify => self.verify().await?,
            Kind::Upgrade => self.upgrade().await?,
        }
        Ok(Value::Null)
    }

    async fn undo(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        match self.kind {
            Kind::Record | Kind::Verify => Ok(()),
            Kind::LeaseAccess => self.lease_access_undo(data, partial).await,
            Kind::LeaderMigration => self.leader_migration_undo().await,
            Kind::Cordon => self.cordon_undo().await,
            Kind::CcmInstall => self.ccm_install_undo().await,
            Kind::Switch => self.switch_undo().await,
            Kind::CcmMigrationOff => self.ccm_migration_off_undo().await,
            // back to S5: the control plane cordoned again
            Kind::Uncordon => self.cordon(true).await,
            Kind::Upgrade => Err(StepError::new(format!(
                "the Kubernetes version is not taken back: {}",
                self.kind
                    .reversibility(self.j.kubernetes_version.as_deref().unwrap_or(""))
            ))),
        }
    }
}
