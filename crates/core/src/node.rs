//! Node operations every flow reuses, written once over [`ClusterApi`]: a drain step (cordon,
//! evictions that respect PodDisruptionBudgets, a deadline, the blocking budget named), an
//! uncordon step, both undone so that each node gets back its own earlier cordon state, waiting
//! for a node to be Ready, and the quorum gate that keeps control-plane hosts one at a time only
//! while every other controller is healthy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{ClusterApi, DrainOptions};
use crate::engine::{Gate, Logger, Step, StepError, StepKey, from_data, to_data};

/// A node's cordon state before a step touched it: the undo data of [`DrainStep`] and
/// [`UncordonStep`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CordonState {
    pub node: String,
    /// Cordoned (`spec.unschedulable`) before the step.
    pub unschedulable: bool,
}

async fn cordon_state(cluster: &dyn ClusterApi, node: &str) -> Result<CordonState, StepError> {
    let nodes = cluster.nodes().await?;
    let n = nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| StepError::new(format!("node {node} not found")))?;
    Ok(CordonState {
        node: node.to_string(),
        unschedulable: n.unschedulable,
    })
}

/// Cordons and drains one node; its undo uncordons the node unless it was cordoned before.
#[derive(Debug)]
pub struct DrainStep {
    key: StepKey,
    node: String,
    cluster: Arc<dyn ClusterApi>,
    options: DrainOptions,
    log: Logger,
}

impl DrainStep {
    pub fn new(
        key: StepKey,
        node: impl Into<String>,
        cluster: Arc<dyn ClusterApi>,
        options: DrainOptions,
        log: Logger,
    ) -> Self {
        Self {
            key,
            node: node.into(),
            cluster,
            options,
            log,
        }
    }
}

#[async_trait::async_trait]
impl Step for DrainStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        to_data(&cordon_state(self.cluster.as_ref(), &self.node).await?)
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError> {
        let r = self.cluster.drain(&self.node, &self.options).await?;
        let on = self.key.host().unwrap_or("cluster");
        self.log.info(format!(
            "[{on}] drained node {}: {} pod(s) evicted",
            self.node,
            r.evicted.len()
        ));
        Ok(prepared.clone())
    }

    async fn undo(&self, data: &Value, _partial: bool) -> Result<(), StepError> {
        let before: CordonState = from_data(data)?;
        if !before.unschedulable {
            self.cluster.uncordon(&before.node).await?;
        }
        Ok(())
    }
}

/// Uncordons one node; its undo cordons it again, unless it was cordoned by nobody when a
/// partial apply was cut off (then it is left as it was found).
#[derive(Debug)]
pub struct UncordonStep {
    key: StepKey,
    node: String,
    cluster: Arc<dyn ClusterApi>,
}

impl UncordonStep {
    pub fn new(key: StepKey, node: impl Into<String>, cluster: Arc<dyn ClusterApi>) -> Self {
        Self {
            key,
            node: node.into(),
            cluster,
        }
    }
}

#[async_trait::async_trait]
impl Step for UncordonStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        to_data(&cordon_state(self.cluster.as_ref(), &self.node).await?)
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError> {
        self.cluster.uncordon(&self.node).await?;
        Ok(prepared.clone())
    }

    async fn undo(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        let before: CordonState = from_data(data)?;
        if !partial || before.unschedulable {
            self.cluster.cordon(&before.node).await?;
        }
        Ok(())
    }
}

/// Waits until `node` is Ready, polling every `poll`; a transient API failure is waited out.
pub async fn wait_ready(
    cluster: &dyn ClusterApi,
    node: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<(), StepError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ready = match cluster.nodes().await {
            Ok(nodes) => nodes.iter().any(|n| n.name == node && n.ready),
            Err(e) if e.is_transient() => false,
            Err(e) => return Err(e.into()),
        };
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StepError::new(format!(
                "node {node} did not become Ready within {}s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The quorum gate: a control-plane host starts only when the nodes of all the other hosts of
/// its group are Ready, waiting up to `timeout` for them.
#[derive(Debug)]
pub struct NodesReadyGate {
    pub cluster: Arc<dyn ClusterApi>,
    /// Host name -> node name.
    pub nodes: BTreeMap<String, String>,
    pub timeout: Duration,
    pub poll: Duration,
}

#[async_trait::async_trait]
impl Gate for NodesReadyGate {
    async fn wait(&self, _host: &str, others: &[String]) -> Result<(), StepError> {
        for o in others {
            let Some(node) = self.nodes.get(o) else {
                continue;
            };
            wait_ready(self.cluster.as_ref(), node, self.timeout, self.poll)
                .await
                .map_err(|e| e.context(format!("controller {o}")))?;
        }
        Ok(())
    }
}
