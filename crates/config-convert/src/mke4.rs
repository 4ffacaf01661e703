//! The MKE 4k `MkeConfig` (4.1 schema, `reference/mke4-config.md`) and the defaults
//! `mkectl init` prints for each supported version.
//!
//! Optional fields are `None` when a generated file does not print them. Free-form parts
//! (kubelet profile values, ingress affinity and tolerations) are JSON values so that any
//! Kubernetes shape passes through untouched. Key order in the output is decided by
//! [`crate::yaml`], not by field order here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// MKE 4k versions ferry can write a configuration for (from the release matrix).
pub const SUPPORTED_VERSIONS: &[&str] = &["v4.1.0", "v4.1.1", "v4.1.2", "v4.1.3", "v4.1.5"];

/// The target when none is given: the latest 4.1 release of the matrix. 4.1.3 is not
/// recommended by Mirantis (Envoy gateway and offline issues, fixed in 4.1.4).
pub const DEFAULT_VERSION: &str = "v4.1.5";

type StringMap = BTreeMap<String, String>;

/// `MkeConfig`, the whole `mke4.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MkeConfig {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Always printed as `null` by `mkectl init`.
    pub creation_timestamp: Option<String>,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// 4.1.0 to 4.1.2: MetalLB as a chart add-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addons: Option<Vec<Addon>>,
    pub airgap: Enabled,
    pub api_server: ApiServer,
    pub authentication: Authentication,
    pub backup: Backup,
    pub cloud_provider: CloudProvider,
    pub controller_manager: ControllerManager,
    pub device_plugins: DevicePlugins,
    pub dns: Dns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_gateway: Option<EnvoyGateway>,
    pub etcd: Etcd,
    #[serde(
        default,
        rename = "gatewayMKEIngress",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_mke_ingress: Option<GatewayIngress>,
    pub ingress_controller: IngressController,
    pub kubelet: Kubelet,
    pub license: License,
    /// 4.1.3+: replaces the MetalLB add-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metallb: Option<Enabled>,
    pub monitoring: Monitoring,
    pub network: Network,
    #[serde(
        default,
        rename = "nodeLocalDNS",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_local_dns: Option<NodeLocalDns>,
    pub policy_controller: PolicyController,
    pub registries: Registries,
    pub scheduler: Scheduler,
    pub tracking: Tracking,
    pub version: String,
    #[serde(default)]
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addon {
    pub chart: AddonChart,
    pub dry_run: bool,
    pub enabled: bool,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddonChart {
    pub name: String,
    pub repo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_pull_images: Option<bool>,
    pub audit: Audit,
    pub encryption_provider: String,
    pub event_rate_limit: Enabled,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<StringMap>,
    pub request_timeout: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_policy_yaml: Option<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    pub log_path: String,
    pub max_age: i64,
    pub max_backup: i64,
    pub max_size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    pub expiry: Expiry,
    pub ldap: Enabled,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_users: Option<bool>,
    pub oidc: Oidc,
    pub saml: Saml,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_tokens: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_tokens: Option<RefreshTokens>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokens {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_if_not_used_for: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Oidc {
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
    pub enabled: bool,
    #[serde(
        default,
        rename = "ssoMetadataURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub sso_metadata_url: Option<String>,
}

/// `spec.backup`; its keys are snake_case in MKE 4k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub enabled: bool,
    pub scheduled_backup: Enabled,
    pub storage_provider: StorageProvider,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageProvider {
    pub external_options: Map<String, Value>,
    pub in_cluster_options: InClusterOptions,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InClusterOptions {
    pub admin_credentials_secret: String,
    pub enable_ui: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudProvider {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerManager {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<StringMap>,
    #[serde(rename = "terminatedPodGCThreshold")]
    pub terminated_pod_gc_threshold: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevicePlugins {
    #[serde(rename = "nvidiaGPU")]
    pub nvidia_gpu: NvidiaGpu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvidiaGpu {
    pub enabled: bool,
    pub mig: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    pub lameduck: Lameduck,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lameduck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyGateway {
    pub replica_count: i64,
    pub tolerations: Vec<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Etcd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_quota: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cipher_suites: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayIngress {
    pub node_ports: HttpPorts,
    pub ports: HttpPorts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpPorts {
    pub http: i64,
    pub https: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressController {
    pub affinity: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_load_balancer: Option<bool>,
    pub enabled: bool,
    #[serde(
        default,
        rename = "externalIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_ips: Option<Vec<String>>,
    pub extra_args: IngressExtraArgs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ports: Option<HttpPorts>,
    pub ports: Map<String, Value>,
    #[serde(
        default,
        rename = "preserveClientIP",
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_client_ip: Option<bool>,
    pub replica_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_services: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_services: Option<StringMap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressExtraArgs {
    pub default_ssl_certificate: String,
    pub enable_ssl_passthrough: bool,
    pub http_port: i64,
    pub https_port: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kubelet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_profiles: Option<Vec<CustomProfile>>,
    #[serde(rename = "eventRecordQPS")]
    pub event_record_qps: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_root_dir: Option<String>,
    pub manager_kube_reserved: StringMap,
    pub max_pods: i64,
    pub pod_pids_limit: i64,
    pub pods_per_core: i64,
    pub protect_kernel_defaults: bool,
    pub seccomp_default: bool,
    pub worker_kube_reserved: StringMap,
}

/// A kubelet custom profile: a `KubeletConfiguration` fragment with JSON field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomProfile {
    pub name: String,
    pub values: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct License {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    #[serde(rename = "enableCAdvisor")]
    pub enable_cadvisor: bool,
    pub enable_grafana: bool,
    pub enable_opscare: bool,
    pub grafana: Grafana,
    pub prometheus: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grafana {
    pub ingress: Enabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub cplb: Disabled,
    pub kube_proxy: KubeProxy,
    pub multus: Enabled,
    pub nllb: Disabled,
    pub node_port_range: String,
    pub providers: Vec<Provider>,
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disabled {
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProxy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    pub iptables: KubeProxyIptables,
    pub ipvs: KubeProxyIpvs,
    pub metrics_bind_address: String,
    pub mode: String,
    pub nftables: SyncPeriods,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port_addresses: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProxyIptables {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_node_ports: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masquerade_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masquerade_bit: Option<i64>,
    pub min_sync_period: String,
    pub sync_period: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProxyIpvs {
    #[serde(
        default,
        rename = "excludeCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude_cidrs: Option<Vec<String>>,
    pub min_sync_period: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(default, rename = "strictARP", skip_serializing_if = "Option::is_none")]
    pub strict_arp: Option<bool>,
    pub sync_period: String,
    pub tcp_fin_timeout: String,
    pub tcp_timeout: String,
    pub udp_timeout: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPeriods {
    pub min_sync_period: String,
    pub sync_period: String,
}

/// A CNI provider. `extraConfig` values are strings, including the calico `values.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_config: Option<StringMap>,
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeLocalDns {
    pub enabled: bool,
    pub node_local_config_persist: bool,
    pub resources: NodeLocalDnsResources,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeLocalDnsResources {
    pub requests: StringMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyController {
    pub opa_gatekeeper: OpaGatekeeper,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpaGatekeeper {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt_namespaces: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registries {
    pub chart_registry: Registry,
    pub image_registry: Registry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduler {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_to_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiling_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracking {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_label: Option<String>,
    pub enabled: bool,
}

/// One `spec.hosts[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_flags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_taints: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_interface: Option<String>,
    pub role: String,
    pub ssh: Ssh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ssh {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion: Option<Value>,
    pub key_path: String,
    pub port: i64,
    pub user: String,
}

fn s(v: &str) -> String {
    v.to_string()
}

fn map(pairs: &[(&str, &str)]) -> StringMap {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

fn zero_sync() -> SyncPeriods {
    SyncPeriods {
        min_sync_period: s("0s"),
        sync_period: s("0s"),
    }
}

/// Whether `version` has the 4.1.3 additions (`nodeLocalDNS`, `metallb`, Envoy gateway,
/// `kubeletRootDir`).
pub fn has_4_1_3_fields(version: &str) -> bool {
    !matches!(version, "v4.1.0" | "v4.1.1" | "v4.1.2")
}

impl MkeConfig {
    /// The configuration `mkectl init` prints for `version` (no hosts).
    ///
    /// 4.1.0 is `samples/mke4-v4.1.0.cncf-conformance.yaml` without its two edited values; a
    /// test compares the emitted text with that file. Later versions add the fields their
    /// documentation lists with their documented defaults.
    pub fn defaults(version: &str) -> Result<Self, crate::Error> {
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(crate::Error::UnsupportedVersion {
                version: version.to_string(),
            });
        }
        let newer = has_4_1_3_fields(version);
        let calico_cidr = "192.168.0.0/16";
        Ok(MkeConfig {
            api_version: s("mke.mirantis.com/v1alpha1"),
            kind: s("MkeConfig"),
            metadata: Metadata {
                creation_timestamp: None,
                name: s("mke"),
                namespace: s("mke"),
            },
            spec: Spec {
                addons: None,
                airgap: Enabled { enabled: false },
                api_server: ApiServer {
                    always_pull_images: None,
                    audit: Audit {
                        custom_policy_yaml: None,
                        enabled: false,
                        level: None,
                        log_path: s("/var/log/k0s/audit/mke4_audit.log"),
                        max_age: 30,
                        max_backup: 10,
                        max_size: 10,
                    },
                    encryption_provider: s("/var/lib/k0s/encryption.cfg"),
                    event_rate_limit: Enabled { enabled: false },
                    external_address: None,
                    extra_args: None,
                    request_timeout: s("1m0s"),
                },
                authentication: Authentication {
                    expiry: Expiry::default(),
                    ldap: Enabled { enabled: false },
                    local_users: None,
                    oidc: Oidc::default(),
                    saml: Saml::default(),
                },
                backup: Backup {
                    enabled: true,
                    scheduled_backup: Enabled { enabled: false },
                    storage_provider: StorageProvider {
                        external_options: Map::new(),
                        in_cluster_options: InClusterOptions {
                            admin_credentials_secret: s("minio-credentials"),
                            enable_ui: true,
                        },
                        kind: s("InCluster"),
                    },
                },
                cloud_provider: CloudProvider {
                    enabled: false,
                    provider: Some(s("aws")),
                },
                controller_manager: ControllerManager {
                    extra_args: None,
                    terminated_pod_gc_threshold: 12500,
                },
                device_plugins: DevicePlugins {
                    nvidia_gpu: NvidiaGpu {
                        enabled: false,
                        mig: Map::new(),
                    },
                },
                dns: Dns::default(),
                envoy_gateway: newer.then(|| EnvoyGateway {
                    replica_count: 2,
                    tolerations: vec![serde_json::json!({
                        "effect": "NoSchedule",
                        "key": "node-role.kubernetes.io/master",
                        "operator": "Exists",
                    })],
                }),
                etcd: Etcd::default(),
                gateway_mke_ingress: newer.then_some(GatewayIngress {
                    node_ports: HttpPorts {
                        http: 33000,
                        https: 33001,
                    },
                    ports: HttpPorts {
                        http: 80,
                        https: 443,
                    },
                }),
                ingress_controller: IngressController {
                    affinity: serde_json::json!({ "nodeAffinity": {} }),
                    config_map: None,
                    enable_load_balancer: None,
                    enabled: true,
                    external_ips: None,
                    extra_args: IngressExtraArgs {
                        default_ssl_certificate: s("mke/mke-ingress.tls"),
                        enable_ssl_passthrough: false,
                        http_port: 80,
                        https_port: 443,
                    },
                    node_ports: None,
                    ports: Map::new(),
                    preserve_client_ip: None,
                    replica_count: 2,
                    tcp_services: None,
                    tolerations: None,
                    udp_services: None,
                },
                kubelet: Kubelet {
                    custom_profiles: None,
                    event_record_qps: 50,
                    extra_args: None,
                    kubelet_root_dir: newer.then(|| s("/var/lib/kubelet")),
                    manager_kube_reserved: map(&[
                        ("cpu", "250m"),
                        ("ephemeral-storage", "4Gi"),
                        ("memory", "2Gi"),
                    ]),
                    max_pods: 110,
                    pod_pids_limit: -1,
                    pods_per_core: 0,
                    protect_kernel_defaults: false,
                    seccomp_default: false,
                    worker_kube_reserved: map(&[
                        ("cpu", "50m"),
                        ("ephemeral-storage", "500Mi"),
                        ("memory", "300Mi"),
                    ]),
                },
                license: License::default(),
                metallb: newer.then_some(Enabled { enabled: false }),
                monitoring: Monitoring {
                    enable_cadvisor: false,
                    enable_grafana: true,
                    enable_opscare: false,
                    grafana: Grafana {
                        ingress: Enabled { enabled: false },
                    },
                    prometheus: Map::new(),
                },
                network: Network {
                    cplb: Disabled { disabled: true },
                    kube_proxy: KubeProxy {
                        disabled: None,
                        iptables: KubeProxyIptables {
                            localhost_node_ports: None,
                            masquerade_all: None,
                            masquerade_bit: None,
                            min_sync_period: s("0s"),
                            sync_period: s("0s"),
                        },
                        ipvs: KubeProxyIpvs {
                            exclude_cidrs: None,
                            min_sync_period: s("0s"),
                            scheduler: None,
                            strict_arp: None,
                            sync_period: s("0s"),
                            tcp_fin_timeout: s("0s"),
                            tcp_timeout: s("0s"),
                            udp_timeout: s("0s"),
                        },
                        metrics_bind_address: s("0.0.0.0:10249"),
                        mode: s("iptables"),
                        nftables: zero_sync(),
                        node_port_addresses: None,
                    },
                    multus: Enabled { enabled: false },
                    nllb: Disabled { disabled: true },
                    node_port_range: s("32768-35535"),
                    providers: vec![
                        Provider {
                            enabled: true,
                            extra_config: Some(map(&[
                                ("cidrV4", calico_cidr),
                                ("linuxDataplane", "Iptables"),
                                ("loglevel", "Info"),
                            ])),
                            provider: s("calico"),
                        },
                        Provider {
                            enabled: false,
                            extra_config: None,
                            provider: s("custom"),
                        },
                        Provider {
                            enabled: false,
                            extra_config: Some(map(&[("cidrV4", calico_cidr), ("v", "5")])),
                            provider: s("kuberouter"),
                        },
                    ]
                    .into_iter()
                    // Only the 4.1.0 output lists cilium.
                    .chain((!newer).then(|| Provider {
                        enabled: false,
                        extra_config: Some(map(&[
                            ("ipam.operator.clusterPoolIPv4PodCIDRList", calico_cidr),
                            ("routingMode", "tunnel"),
                            ("tunnelProtocol", "vxlan"),
                        ])),
                        provider: s("cilium"),
                    }))
                    .collect(),
                    service_cidr: s("10.96.0.0/16"),
                },
                node_local_dns: newer.then(|| NodeLocalDns {
                    enabled: false,
                    node_local_config_persist: false,
                    resources: NodeLocalDnsResources {
                        requests: StringMap::new(),
                    },
                }),
                policy_controller: PolicyController {
                    opa_gatekeeper: OpaGatekeeper {
                        enabled: false,
                        exempt_namespaces: None,
                    },
                },
                registries: Registries {
                    chart_registry: Registry {
                        ca_data: None,
                        url: s("oci://registry.mirantis.com/mke"),
                    },
                    image_registry: Registry {
                        ca_data: None,
                        url: s("registry.mirantis.com/mke"),
                    },
                },
                scheduler: Scheduler::default(),
                tracking: Tracking {
                    cluster_label: None,
                    enabled: true,
                },
                version: s(version),
                hosts: Vec::new(),
            },
        })
    }

    /// The calico provider entry, if present.
    pub fn calico_mut(&mut self) -> Option<&mut Provider> {
        self.spec
            .network
            .providers
            .iter_mut()
            .find(|p| p.provider == "calico")
    }
}
