//! The typed model of an MKE 3 config-toml (generated from the schema table once, then kept by
//! hand; a test checks that it and [`super::schema::KEYS`] list the same keys).

use std::collections::BTreeMap;

use super::de;

/// An MKE 3 config-toml, every table and key of `reference/mke3-config.md`.
///
/// Every field is optional: an export of an older cluster lacks newer keys. Numbers accept
/// both TOML integers and strings of digits; both documented spellings of a key are accepted.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Mke3Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardening_configuration: Option<HardeningConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log_configuration: Option<AuditLogConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_configuration: Option<SchedulingConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_configuration: Option<TrackingConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_configuration: Option<TrustConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_configuration: Option<LicenseConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki: Option<Pki>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_schedule_config: Option<BackupScheduleConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_cleanup_schedule_config: Option<EtcdCleanupScheduleConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_config: Option<ClusterConfig>,
    /// `registries`.
    #[serde(
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub registries: Option<Vec<RegistryLink>>,
    /// `custom_api_server_headers`.
    #[serde(
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_api_server_headers: Option<Vec<ApiServerHeader>>,
    /// `user_workload_defaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_workload_defaults: Option<toml::Table>,
    /// `windows_gmsa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_gmsa: Option<bool>,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Auth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Sessions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_identity_provider: Option<ExternalIdentityProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_lock: Option<AccountLock>,
    #[serde(rename = "samlProxy", default, skip_serializing_if = "Option::is_none")]
    pub saml_proxy: Option<SamlProxy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<Saml>,
    /// `auth.backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// `auth.default_new_user_role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_new_user_role: Option<String>,
    /// `auth.samlEnabled`.
    #[serde(
        rename = "samlEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub saml_enabled: Option<bool>,
    /// `auth.scimEnabled`.
    #[serde(
        rename = "scimEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub scim_enabled: Option<bool>,
    /// `auth.samlLoginText`.
    #[serde(
        rename = "samlLoginText",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub saml_login_text: Option<String>,
    /// `auth.managedPasswordDisabled`.
    #[serde(
        rename = "managedPasswordDisabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub managed_password_disabled: Option<bool>,
    /// `auth.managedPasswordFallbackUser`.
    #[serde(
        rename = "managedPasswordFallbackUser",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub managed_password_fallback_user: Option<String>,
}

/// `[auth.sessions]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Sessions {
    /// `auth.sessions.lifetime_minutes`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub lifetime_minutes: Option<i64>,
    /// `auth.sessions.renewal_threshold_minutes`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub renewal_threshold_minutes: Option<i64>,
    /// `auth.sessions.per_user_limit`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_user_limit: Option<i64>,
    /// `auth.sessions.store_token_per_session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_token_per_session: Option<bool>,
}

/// `[auth.external_identity_provider]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ExternalIdentityProvider {
    /// `auth.external_identity_provider.wellKnownConfigUrl`.
    #[serde(
        rename = "wellKnownConfigUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub well_known_config_url: Option<String>,
    /// `auth.external_identity_provider.clientId`.
    #[serde(rename = "clientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `auth.external_identity_provider.clientSecret`.
    #[serde(
        rename = "clientSecret",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_secret: Option<String>,
    /// `auth.external_identity_provider.usernameClaim`.
    #[serde(
        rename = "usernameClaim",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_claim: Option<String>,
    /// `auth.external_identity_provider.caBundle`.
    #[serde(rename = "caBundle", default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// `auth.external_identity_provider.httpProxy`.
    #[serde(rename = "httpProxy", default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    /// `auth.external_identity_provider.httpsProxy`.
    #[serde(
        rename = "httpsProxy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub https_proxy: Option<String>,
    /// `auth.external_identity_provider.issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `auth.external_identity_provider.userServiceId`.
    #[serde(
        rename = "userServiceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_service_id: Option<String>,
    /// `auth.external_identity_provider.signInCriteria`.
    #[serde(
        rename = "signInCriteria",
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub sign_in_criteria: Option<Vec<Criterion>>,
    /// `auth.external_identity_provider.adminRoleCriteria`.
    #[serde(
        rename = "adminRoleCriteria",
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub admin_role_criteria: Option<Vec<Criterion>>,
}

/// `[auth.account_lock]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct AccountLock {
    /// `auth.account_lock.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `auth.account_lock.failureTrigger`.
    #[serde(
        rename = "failureTrigger",
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_trigger: Option<i64>,
    /// `auth.account_lock.durationSeconds`.
    #[serde(
        rename = "durationSeconds",
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_seconds: Option<i64>,
}

/// `[auth.samlProxy]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct SamlProxy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SamlProxyCredentials>,
    /// `auth.samlProxy.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `auth.samlProxy.proxy_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
}

/// `[auth.samlProxy.credentials]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct SamlProxyCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<SamlProxyBasicCredentials>,
}

/// `[auth.samlProxy.credentials.basic]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct SamlProxyBasicCredentials {
    /// `auth.samlProxy.credentials.basic.user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `auth.samlProxy.credentials.basic.password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `[auth.saml]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Saml {
    /// `auth.saml.idpMetadataURL`.
    #[serde(
        rename = "idpMetadataURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idp_metadata_url: Option<String>,
    /// `auth.saml.spHost`.
    #[serde(rename = "spHost", default, skip_serializing_if = "Option::is_none")]
    pub sp_host: Option<String>,
    /// `auth.saml.rootCerts`.
    #[serde(rename = "rootCerts", default, skip_serializing_if = "Option::is_none")]
    pub root_certs: Option<String>,
    /// `auth.saml.tlsSkipVerify`.
    #[serde(
        rename = "tlsSkipVerify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_skip_verify: Option<bool>,
}

/// `[hardening_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct HardeningConfiguration {
    /// `hardening_configuration.hardening_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardening_enabled: Option<bool>,
    /// `hardening_configuration.limit_kernel_capabilities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_kernel_capabilities: Option<bool>,
    /// `hardening_configuration.pid_limit`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub pid_limit: Option<i64>,
    /// `hardening_configuration.pid_limit_unspecified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_limit_unspecified: Option<bool>,
    /// `hardening_configuration.use_strong_tls_ciphers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_strong_tls_ciphers: Option<bool>,
}

/// `[audit_log_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct AuditLogConfiguration {
    /// `audit_log_configuration.level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// `audit_log_configuration.support_dump_include_audit_logs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_dump_include_audit_logs: Option<bool>,
}

/// `[scheduling_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct SchedulingConfiguration {
    /// `scheduling_configuration.enable_admin_ucp_scheduling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_admin_ucp_scheduling: Option<bool>,
    /// `scheduling_configuration.default_node_orchestrator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_node_orchestrator: Option<String>,
}

/// `[tracking_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct TrackingConfiguration {
    /// `tracking_configuration.disable_usageinfo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_usageinfo: Option<bool>,
    /// `tracking_configuration.disable_tracking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_tracking: Option<bool>,
    /// `tracking_configuration.cluster_label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_label: Option<String>,
    /// `tracking_configuration.ops_care`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_care: Option<bool>,
    /// `tracking_configuration.anonymize_tracking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymize_tracking: Option<bool>,
}

/// `[trust_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct TrustConfiguration {
    /// `trust_configuration.require_content_trust`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_content_trust: Option<bool>,
    /// `trust_configuration.require_signature_from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signature_from: Option<Vec<String>>,
    /// `trust_configuration.allow_repos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_repos: Option<Vec<String>>,
}

/// `[log_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct LogConfiguration {
    /// `log_configuration.protocol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `log_configuration.host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `log_configuration.level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// `[license_configuration]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct LicenseConfiguration {
    /// `license_configuration.auto_refresh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_refresh: Option<bool>,
    /// `license_configuration.omit_telemetry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_telemetry: Option<bool>,
}

/// `[pki]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Pki {
    /// `pki.client_ca_bundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_bundle: Option<String>,
}

/// `[backup_schedule_config]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct BackupScheduleConfig {
    /// `backup_schedule_config.notification_delay`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub notification_delay: Option<i64>,
    /// `backup_schedule_config.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `backup_schedule_config.path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `backup_schedule_config.no_passphrase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_passphrase: Option<bool>,
    /// `backup_schedule_config.passphrase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// `backup_schedule_config.cron_spec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_spec: Option<String>,
    /// `backup_schedule_config.include_logs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_logs: Option<bool>,
    /// `backup_schedule_config.backups_limit`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub backups_limit: Option<i64>,
}

/// `[etcd_cleanup_schedule_config]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct EtcdCleanupScheduleConfig {
    /// `etcd_cleanup_schedule_config.cleanup_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_enabled: Option<bool>,
    /// `etcd_cleanup_schedule_config.min_ttl_to_keep_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_ttl_to_keep_seconds: Option<i64>,
    /// `etcd_cleanup_schedule_config.cron_expression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_expression: Option<String>,
    /// `etcd_cleanup_schedule_config.defrag_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag_enabled: Option<bool>,
    /// `etcd_cleanup_schedule_config.defrag_pause_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub defrag_pause_seconds: Option<i64>,
    /// `etcd_cleanup_schedule_config.defrag_timeout_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub defrag_timeout_seconds: Option<i64>,
}

/// `[cluster_config]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ClusterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_event_rate_limit: Option<K8sEventRateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_controller: Option<IngressController>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metallb_config: Option<MetallbConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_enforcement: Option<PolicyEnforcement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_dns_lameduck_config: Option<CoreDnsLameduckConfig>,
    /// `cluster_config.controller_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub controller_port: Option<i64>,
    /// `cluster_config.kube_apiserver_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_apiserver_port: Option<i64>,
    /// `cluster_config.swarm_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub swarm_port: Option<i64>,
    /// `cluster_config.swarm_strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_strategy: Option<String>,
    /// `cluster_config.swarm_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_only: Option<bool>,
    /// `cluster_config.swarm_polling_disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_polling_disabled: Option<bool>,
    /// `cluster_config.hide_swarm_ui`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_swarm_ui: Option<bool>,
    /// `cluster_config.networks_quota_per_collection`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub networks_quota_per_collection: Option<i64>,
    /// `cluster_config.dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<String>>,
    /// `cluster_config.dns_opt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_opt: Option<Vec<String>>,
    /// `cluster_config.dns_search`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_search: Option<Vec<String>>,
    /// `cluster_config.profiling_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiling_enabled: Option<bool>,
    /// `cluster_config.authz_cache_timeout`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub authz_cache_timeout: Option<i64>,
    /// `cluster_config.kv_timeout`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kv_timeout: Option<i64>,
    /// `cluster_config.kv_snapshot_count`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kv_snapshot_count: Option<i64>,
    /// `cluster_config.external_service_lb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_service_lb: Option<String>,
    /// `cluster_config.cni_installer_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_installer_url: Option<String>,
    /// `cluster_config.metrics_retention_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_retention_time: Option<String>,
    /// `cluster_config.metrics_scrape_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_scrape_interval: Option<String>,
    /// `cluster_config.metrics_disk_usage_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_disk_usage_interval: Option<String>,
    /// `cluster_config.nvidia_device_plugin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvidia_device_plugin: Option<bool>,
    /// `cluster_config.nvidia_device_partitioner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvidia_device_partitioner: Option<bool>,
    /// `cluster_config.rethinkdb_cache_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rethinkdb_cache_size: Option<String>,
    /// `cluster_config.exclude_server_identity_headers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_server_identity_headers: Option<bool>,
    /// `cluster_config.cloud_provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<String>,
    /// `cluster_config.pod_cidr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// `cluster_config.ipip_mtu`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipip_mtu: Option<i64>,
    /// `cluster_config.calico_mtu`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_mtu: Option<i64>,
    /// `cluster_config.calico_ip_auto_method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_ip_auto_method: Option<String>,
    /// `cluster_config.calico_kdd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_kdd: Option<bool>,
    /// `cluster_config.calico_vxlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_vxlan: Option<bool>,
    /// `cluster_config.calico_vxlan_mtu`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_vxlan_mtu: Option<i64>,
    /// `cluster_config.calico_vxlan_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_vxlan_port: Option<i64>,
    /// `cluster_config.vxlan_vni`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_vni: Option<i64>,
    /// `cluster_config.calico_strict_affinity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_strict_affinity: Option<bool>,
    /// `cluster_config.calico_ebpf_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_ebpf_enabled: Option<bool>,
    /// `cluster_config.calico_controller_probes_tuning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_controller_probes_tuning: Option<bool>,
    /// `cluster_config.calico_controller_liveness_probe_failure_threshold`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_liveness_probe_failure_threshold: Option<i64>,
    /// `cluster_config.calico_controller_liveness_probe_success_threshold`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_liveness_probe_success_threshold: Option<i64>,
    /// `cluster_config.calico_controller_liveness_probe_period_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_liveness_probe_period_seconds: Option<i64>,
    /// `cluster_config.calico_controller_liveness_probe_timeout_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_liveness_probe_timeout_seconds: Option<i64>,
    /// `cluster_config.calico_controller_liveness_probe_initial_delay_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_liveness_probe_initial_delay_seconds: Option<i64>,
    /// `cluster_config.calico_controller_readiness_probe_failure_threshold`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_readiness_probe_failure_threshold: Option<i64>,
    /// `cluster_config.calico_controller_readiness_probe_success_threshold`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_readiness_probe_success_threshold: Option<i64>,
    /// `cluster_config.calico_controller_readiness_probe_period_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_readiness_probe_period_seconds: Option<i64>,
    /// `cluster_config.calico_controller_readiness_probe_timeout_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_readiness_probe_timeout_seconds: Option<i64>,
    /// `cluster_config.calico_controller_readiness_probe_initial_delay_seconds`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub calico_controller_readiness_probe_initial_delay_seconds: Option<i64>,
    /// `cluster_config.unmanaged_cni`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged_cni: Option<bool>,
    /// `cluster_config.secure_overlay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_overlay: Option<bool>,
    /// `cluster_config.azure_ip_count`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_ip_count: Option<i64>,
    /// `cluster_config.service_cluster_ip_range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_cluster_ip_range: Option<String>,
    /// `cluster_config.nodeport_range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodeport_range: Option<String>,
    /// `cluster_config.custom_kube_api_server_flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_kube_api_server_flags: Option<Vec<String>>,
    /// `cluster_config.custom_kube_controller_manager_flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_kube_controller_manager_flags: Option<Vec<String>>,
    /// `cluster_config.custom_kubelet_flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_kubelet_flags: Option<Vec<String>>,
    /// `cluster_config.custom_kube_scheduler_flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_kube_scheduler_flags: Option<Vec<String>>,
    /// `cluster_config.custom_kube_proxy_flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_kube_proxy_flags: Option<Vec<String>>,
    /// `cluster_config.custom_kubelet_flags_profiles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_kubelet_flags_profiles: Option<BTreeMap<String, String>>,
    /// `cluster_config.local_volume_collection_mapping`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_volume_collection_mapping: Option<bool>,
    /// `cluster_config.manager_kube_reserved_resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_kube_reserved_resources: Option<String>,
    /// `cluster_config.worker_kube_reserved_resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_kube_reserved_resources: Option<String>,
    /// `cluster_config.kubelet_max_pods`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kubelet_max_pods: Option<i64>,
    /// `cluster_config.kubelet_pods_per_core`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kubelet_pods_per_core: Option<i64>,
    /// `cluster_config.kubelet_event_record_qps`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kubelet_event_record_qps: Option<i64>,
    /// `cluster_config.kubelet_data_root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_data_root: Option<String>,
    /// `cluster_config.containerd_root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerd_root: Option<String>,
    /// `cluster_config.windows_kubelet_data_root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_kubelet_data_root: Option<String>,
    /// `cluster_config.windows_containerd_root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_containerd_root: Option<String>,
    /// `cluster_config.kube_protect_kernel_defaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_protect_kernel_defaults: Option<bool>,
    /// `cluster_config.disable_seccomp_default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_seccomp_default: Option<bool>,
    /// `cluster_config.image_scan_aggregation_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_scan_aggregation_enabled: Option<bool>,
    /// `cluster_config.image_scan_cvss_version`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_scan_cvss_version: Option<i64>,
    /// `cluster_config.oidc_client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_client_id: Option<String>,
    /// `cluster_config.kube_default_drop_masq_bits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_default_drop_masq_bits: Option<bool>,
    /// `cluster_config.kube_proxy_mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy_mode: Option<String>,
    /// `cluster_config.kube_proxy_no_cleanup_on_start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy_no_cleanup_on_start: Option<bool>,
    /// `cluster_config.kube_proxy_use_config_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy_use_config_file: Option<bool>,
    /// `cluster_config.custom_proxy_config_yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_proxy_config_yaml: Option<String>,
    /// `cluster_config.cipher_suites_for_kube_api_server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites_for_kube_api_server: Option<String>,
    /// `cluster_config.cipher_suites_for_kubelet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites_for_kubelet: Option<String>,
    /// `cluster_config.cipher_suites_for_etcd_server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites_for_etcd_server: Option<String>,
    /// `cluster_config.image_prune_schedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_prune_schedule: Option<String>,
    /// `cluster_config.cpu_usage_banner_threshold`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_usage_banner_threshold: Option<i64>,
    /// `cluster_config.cpu_usage_banner_scrape_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage_banner_scrape_interval: Option<String>,
    /// `cluster_config.etcd_storage_quota`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_storage_quota: Option<String>,
    /// `cluster_config.kube_api_server_profiling_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_api_server_profiling_enabled: Option<bool>,
    /// `cluster_config.kube_controller_manager_profiling_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_controller_manager_profiling_enabled: Option<bool>,
    /// `cluster_config.kube_scheduler_profiling_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_scheduler_profiling_enabled: Option<bool>,
    /// `cluster_config.kube_scheduler_bind_to_all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_scheduler_bind_to_all: Option<bool>,
    /// `cluster_config.use_flex_volume_driver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_flex_volume_driver: Option<bool>,
    /// `cluster_config.pubkey_auth_cache_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubkey_auth_cache_enabled: Option<bool>,
    /// `cluster_config.prometheus_memory_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_memory_limit: Option<String>,
    /// `cluster_config.prometheus_memory_request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_memory_request: Option<String>,
    /// `cluster_config.shared_sans`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_sans: Option<Vec<String>>,
    /// `cluster_config.kube_manager_terminated_pod_gc_threshold`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_manager_terminated_pod_gc_threshold: Option<i64>,
    /// `cluster_config.kube_api_server_request_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_api_server_request_timeout: Option<String>,
    /// `cluster_config.cadvisor_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadvisor_enabled: Option<bool>,
    /// `cluster_config.kube_api_server_auditing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_api_server_auditing: Option<bool>,
    /// `cluster_config.kube_api_server_audit_log_maxage`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_api_server_audit_log_maxage: Option<i64>,
    /// `cluster_config.kube_api_server_audit_log_maxbackup`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_api_server_audit_log_maxbackup: Option<i64>,
    /// `cluster_config.kube_api_server_audit_log_maxsize`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_api_server_audit_log_maxsize: Option<i64>,
    /// `cluster_config.KubeAPIServerCustomAuditPolicyYaml`.
    #[serde(
        rename = "KubeAPIServerCustomAuditPolicyYaml",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_apiserver_custom_audit_policy_yaml: Option<String>,
    /// `cluster_config.KubeAPIServerEnableCustomAuditPolicy`.
    #[serde(
        rename = "KubeAPIServerEnableCustomAuditPolicy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_apiserver_enable_custom_audit_policy: Option<bool>,
    /// `cluster_config.node_exporter_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_exporter_port: Option<i64>,
    /// `cluster_config.k8s_always_pull_images_ac_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_always_pull_images_ac_enabled: Option<bool>,
    /// `cluster_config.kms_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_enabled: Option<bool>,
    /// `cluster_config.disable_http2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_http2: Option<bool>,
    /// `cluster_config.unauthenticated_http2_dos_mitigation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthenticated_http2_dos_mitigation: Option<bool>,
    /// `cluster_config.gmsa_allow_non_admins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gmsa_allow_non_admins: Option<bool>,
    /// `cluster_config.ignore_pod_updates_for_node_selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_pod_updates_for_node_selector: Option<bool>,
    /// `cluster_config.storage_expt_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_expt_enabled: Option<bool>,
    /// `cluster_config.pre_logon_message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_logon_message: Option<String>,
    /// `cluster_config.cluster_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// `cluster_config.iscsi_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscsi_enabled: Option<bool>,
    /// `cluster_config.iscsiadm_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscsiadm_path: Option<String>,
    /// `cluster_config.iscsidb_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscsidb_path: Option<String>,
    /// `cluster_config.node_local_dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_local_dns: Option<bool>,
    /// `cluster_config.node_local_dns_config_persist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_local_dns_config_persist: Option<bool>,
    /// `cluster_config.windows_gmsa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_gmsa: Option<bool>,
    /// `cluster_config.image_prune_whitelist`.
    #[serde(
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_prune_whitelist: Option<Vec<PruneFilter>>,
}

/// `[cluster_config.ingress_controller]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct IngressController {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_extra_args: Option<IngressExtraArgs>,
    /// `cluster_config.ingress_controller.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `cluster_config.ingress_controller.ingress_num_replicas`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_num_replicas: Option<i64>,
    /// `cluster_config.ingress_controller.ingress_external_ips`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_external_ips: Option<Vec<String>>,
    /// `cluster_config.ingress_controller.ingress_enable_lb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_enable_lb: Option<bool>,
    /// `cluster_config.ingress_controller.ingress_preserve_client_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_preserve_client_ip: Option<bool>,
    /// `cluster_config.ingress_controller.ingress_exposed_ports`.
    #[serde(
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_exposed_ports: Option<Vec<ExposedPort>>,
    /// `cluster_config.ingress_controller.ingress_node_affinity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_node_affinity: Option<toml::Table>,
    /// `cluster_config.ingress_controller.ingress_node_toleration`.
    #[serde(
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_node_toleration: Option<Vec<Toleration>>,
    /// `cluster_config.ingress_controller.config_map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<toml::Table>,
    /// `cluster_config.ingress_controller.ingress_tcp_services`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_tcp_services: Option<toml::Table>,
    /// `cluster_config.ingress_controller.ingress_udp_services`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_udp_services: Option<toml::Table>,
}

/// `[cluster_config.ingress_controller.ingress_extra_args]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct IngressExtraArgs {
    /// `cluster_config.ingress_controller.ingress_extra_args.http_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_port: Option<i64>,
    /// `cluster_config.ingress_controller.ingress_extra_args.https_port`.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub https_port: Option<i64>,
    /// `cluster_config.ingress_controller.ingress_extra_args.enable_ssl_passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ssl_passthrough: Option<bool>,
    /// `cluster_config.ingress_controller.ingress_extra_args.default_ssl_certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_ssl_certificate: Option<String>,
    /// `cluster_config.ingress_controller.ingress_extra_args.default_backend_service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend_service: Option<String>,
}

/// `[cluster_config.metallb_config]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct MetallbConfig {
    /// `cluster_config.metallb_config.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `cluster_config.metallb_config.metallb_ip_addr_pool`.
    #[serde(
        default,
        deserialize_with = "de::opt_tables",
        skip_serializing_if = "Option::is_none"
    )]
    pub metallb_ip_addr_pool: Option<Vec<MetallbPool>>,
}

/// `[cluster_config.policy_enforcement]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PolicyEnforcement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatekeeper: Option<Gatekeeper>,
    /// `cluster_config.policy_enforcement.pod_security_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_policy: Option<bool>,
}

/// `[cluster_config.policy_enforcement.gatekeeper]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Gatekeeper {
    /// `cluster_config.policy_enforcement.gatekeeper.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `cluster_config.policy_enforcement.gatekeeper.excluded_namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_namespaces: Option<Vec<String>>,
}

/// `[cluster_config.core_dns_lameduck_config]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct CoreDnsLameduckConfig {
    /// `cluster_config.core_dns_lameduck_config.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `cluster_config.core_dns_lameduck_config.duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// `[cluster_config.k8s_event_rate_limit]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct K8sEventRateLimit {
    /// `cluster_config.k8s_event_rate_limit.event_rate_limit_ac_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_rate_limit_ac_enabled: Option<bool>,
}

/// `[[auth.external_identity_provider.signInCriteria]]` and `adminRoleCriteria`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Criterion {
    #[serde(default)]
    pub term: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, rename = "matchType")]
    pub match_type: String,
}

/// `[[registries]]`: an MSR/DTR linked to MKE.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct RegistryLink {
    #[serde(default)]
    pub host_address: String,
    #[serde(default)]
    pub service_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
}

/// `[[custom_api_server_headers]]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ApiServerHeader {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// `[[cluster_config.image_prune_whitelist]]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PruneFilter {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `[[cluster_config.ingress_controller.ingress_exposed_ports]]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ExposedPort {
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<i64>,
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_port: Option<i64>,
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `[[cluster_config.ingress_controller.ingress_node_toleration]]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// `[[cluster_config.metallb_config.metallb_ip_addr_pool]]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct MetallbPool {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub external_ip: Vec<String>,
}
