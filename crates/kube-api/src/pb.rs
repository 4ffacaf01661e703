//! The few protobuf messages of the Kubernetes API that a pod list needs, declared with the
//! field numbers of the API's `generated.proto` (k8s.io/api/core/v1 and
//! k8s.io/apimachinery). Every other field is skipped unread by the decoder.
//!
//! Why: the API server encodes a list of 30,000 pods as JSON in several seconds (8 KiB a pod,
//! managed fields and all); as protobuf in a fraction of that. The safety checks read every pod
//! of the cluster, so this is most of their wall time. Only pods are read this way; the other
//! lists are small.
//!
//! The answer is `k8s\0` followed by a `runtime.Unknown` whose `raw` holds the message.

use prost::Message;

/// The four bytes before every protobuf-encoded answer of the API server.
pub const MAGIC: &[u8] = b"k8s\0";
/// The media type a client asks for (and the server answers with) for protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// `runtime.Unknown`: the envelope.
#[derive(Clone, PartialEq, Message)]
pub struct Unknown {
    #[prost(bytes = "vec", optional, tag = "2")]
    pub raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "4")]
    pub content_type: Option<String>,
}

/// `meta.v1.ListMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct ListMeta {
    #[prost(string, optional, tag = "3")]
    pub r#continue: Option<String>,
}

/// `meta.v1.Status`: what the server answers with when it refuses.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(string, optional, tag = "3")]
    pub message: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub reason: Option<String>,
    #[prost(int32, optional, tag = "6")]
    pub code: Option<i32>,
}

/// `core.v1.PodList`.
#[derive(Clone, PartialEq, Message)]
pub struct PodList {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<Pod>,
}

/// `core.v1.Pod`.
#[derive(Clone, PartialEq, Message)]
pub struct Pod {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    pub spec: Option<PodSpec>,
    #[prost(message, optional, tag = "3")]
    pub status: Option<PodStatus>,
}

/// `meta.v1.ObjectMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub namespace: Option<String>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    pub owner_references: Vec<OwnerReference>,
}

/// `meta.v1.OwnerReference`.
#[derive(Clone, PartialEq, Message)]
pub struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    pub kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub controller: Option<bool>,
}

/// `core.v1.PodSpec`.
#[derive(Clone, PartialEq, Message)]
pub struct PodSpec {
    #[prost(message, repeated, tag = "1")]
    pub volumes: Vec<Volume>,
    #[prost(message, repeated, tag = "2")]
    pub containers: Vec<Container>,
    #[prost(btree_map = "string, string", tag = "7")]
    pub node_selector: std::collections::BTreeMap<String, String>,
    #[prost(string, optional, tag = "10")]
    pub node_name: Option<String>,
    #[prost(message, repeated, tag = "20")]
    pub init_containers: Vec<Container>,
    #[prost(message, repeated, tag = "22")]
    pub tolerations: Vec<Toleration>,
    #[prost(btree_map = "string, message", tag = "32")]
    pub overhead: std::collections::BTreeMap<String, Quantity>,
}

/// `core.v1.Container`: its requests only.
#[derive(Clone, PartialEq, Message)]
pub struct Container {
    #[prost(message, optional, tag = "8")]
    pub resources: Option<ResourceRequirements>,
}

/// `core.v1.ResourceRequirements`.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceRequirements {
    #[prost(btree_map = "string, message", tag = "2")]
    pub requests: std::collections::BTreeMap<String, Quantity>,
}

/// `resource.Quantity`: its canonical string.
#[derive(Clone, PartialEq, Message)]
pub struct Quantity {
    #[prost(string, optional, tag = "1")]
    pub string: Option<String>,
}

/// `core.v1.Toleration`.
#[derive(Clone, PartialEq, Message)]
pub struct Toleration {
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub operator: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub value: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub effect: Option<String>,
}

/// `core.v1.Volume`.
#[derive(Clone, PartialEq, Message)]
pub struct Volume {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub volume_source: Option<VolumeSource>,
}

/// `core.v1.VolumeSource`: the three kinds the checks tell apart.
#[derive(Clone, PartialEq, Message)]
pub struct VolumeSource {
    #[prost(message, optional, tag = "1")]
    pub host_path: Option<HostPathVolumeSource>,
    /// Present or not; its fields do not matter.
    #[prost(message, optional, tag = "2")]
    pub empty_dir: Option<Empty>,
    #[prost(message, optional, tag = "10")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
}

/// A message whose fields are not read.
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

/// `core.v1.HostPathVolumeSource`.
#[derive(Clone, PartialEq, Message)]
pub struct HostPathVolumeSource {
    #[prost(string, optional, tag = "1")]
    pub path: Option<String>,
}

/// `core.v1.PersistentVolumeClaimVolumeSource`.
#[derive(Clone, PartialEq, Message)]
pub struct PersistentVolumeClaimVolumeSource {
    #[prost(string, optional, tag = "1")]
    pub claim_name: Option<String>,
}

/// `core.v1.PodStatus`.
#[derive(Clone, PartialEq, Message)]
pub struct PodStatus {
    #[prost(string, optional, tag = "1")]
    pub phase: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub conditions: Vec<PodCondition>,
}

/// `core.v1.PodCondition`.
#[derive(Clone, PartialEq, Message)]
pub struct PodCondition {
    #[prost(string, optional, tag = "1")]
    pub r#type: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub status: Option<String>,
}

/// The message inside a protobuf answer (after the magic bytes, in the envelope's `raw`).
pub fn unwrap(body: &[u8]) -> Result<Vec<u8>, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("a protobuf answer without the k8s magic bytes")?;
    let envelope = Unknown::decode(rest).map_err(|e| format!("bad protobuf envelope: {e}"))?;
    Ok(envelope.raw.unwrap_or_default())
}

/// Decodes one page of a pod list: the pods and the continue token.
pub fn pod_list(body: &[u8]) -> Result<(Vec<Pod>, Option<String>), String> {
    let raw = unwrap(body)?;
    let list = PodList::decode(raw.as_slice()).map_err(|e| format!("bad protobuf PodList: {e}"))?;
    let next = list
        .metadata
        .and_then(|m| m.r#continue)
        .filter(|c| !c.is_empty());
    Ok((list.items, next))
}

/// The message of a refusal encoded as protobuf, if it is one.
pub fn status_message(body: &[u8]) -> Option<String> {
    let raw = unwrap(body).ok()?;
    Status::decode(raw.as_slice()).ok()?.message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(message: &impl Message) -> Vec<u8> {
        let envelope = Unknown {
            raw: Some(message.encode_to_vec()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(envelope.encode_to_vec());
        body
    }

    #[test]
    fn a_page_decodes_with_its_continue_token() {
        let pod = Pod {
            metadata: Some(ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                labels: [("app".to_string(), "web".to_string())].into(),
                owner_references: vec![OwnerReference {
                    kind: Some("ReplicaSet".into()),
                    name: Some("web-abc".into()),
                    controller: Some(true),
                }],
            }),
            spec: Some(PodSpec {
                volumes: vec![Volume {
                    name: Some("scratch".into()),
                    volume_source: Some(VolumeSource {
                        empty_dir: Some(Empty {}),
                        ..Default::default()
                    }),
                }],
                node_name: Some("w1".into()),
                ..Default::default()
            }),
            status: None,
        };
        let list = PodList {
            metadata: Some(ListMeta {
                r#continue: Some("next".into()),
            }),
            items: vec![pod.clone()],
        };
        let (items, next) = pod_list(&wrap(&list)).unwrap();
        assert_eq!(items, vec![pod]);
        assert_eq!(next.as_deref(), Some("next"));
    }

    #[test]
    fn json_or_a_cut_body_is_an_error_not_an_empty_list() {
        assert!(pod_list(br#"{"kind":"PodList"}"#).is_err());
        let list = PodList {
            metadata: None,
            items: vec![Pod {
                metadata: Some(ObjectMeta {
                    name: Some("web-1".into()),
                    ..Default::default()
                }),
                spec: None,
                status: None,
            }],
        };
        let body = wrap(&list);
        assert!(pod_list(&body[..body.len() - 3]).is_err());
    }
}
