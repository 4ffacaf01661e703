//! Kubelet flags and `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`) fields.
//!
//! Two uses, both from kubelet-flags.md and conversion-rules.md 4.1 / 5:
//! * a flag of a `custom_kubelet_flags_profiles` string becomes a typed field of the profile's
//!   `values` ([`profile_flag`], [`convert_profile_flag`], [`set_path`]);
//! * a flag of `custom_kubelet_flags` goes to `kubelet.extraArgs` verbatim unless it would break
//!   the kubelet or fight k0s ([`extra_arg_rejection`]).
//!
//! Value parsing follows the kubelet's own flag parsers (pflag and
//! `k8s.io/component-base/cli/flag`) closely enough that a value accepted here also parses as
//! that flag, so a converted profile does not stop the kubelet on a syntax error; where the two
//! could disagree, the value is rejected rather than guessed. Semantic checks (allowed enum
//! values, resource names in `kubeReserved`) are left to the kubelet.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};

use crate::flags::Flag;

/// Why a kubelet flag was not converted. `Display` gives the reason texts of
/// conversion-rules.md 4.1 and 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotConverted {
    /// Profile: the flag exists but has no config field (kubelet-flags.md section 5).
    NoField,
    /// The flag is gone from the target kubelet (kubelet-flags.md section 6).
    Removed,
    /// Profile: the flag is in no table.
    Unknown,
    /// Profile: the value does not parse as the field's kind. `field` is the dotted JSON path.
    InvalidValue {
        /// Dotted JSON path of the target field, e.g. `kubeReserved` or `logging.verbosity`.
        field: String,
    },
    /// extraArgs: `--config`, `--config-dir`, `--kubeconfig`, `--bootstrap-kubeconfig`.
    OwnedByK0s,
    /// extraArgs: `--hostname-override`, `--node-ip`.
    PerNode,
    /// extraArgs: `--root-dir`.
    UseKubeletDataRoot,
}

impl fmt::Display for NotConverted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoField => f.write_str("no KubeletConfiguration field"),
            Self::Removed => {
                f.write_str("removed from the kubelet in the target Kubernetes version")
            }
            Self::Unknown => f.write_str("unknown kubelet flag"),
            Self::InvalidValue { field } => write!(f, "invalid value for {field}"),
            Self::OwnedByK0s => f.write_str("owned by k0s"),
            Self::PerNode => f.write_str("per-node setting; use hosts[].hostname / privateAddress"),
            Self::UseKubeletDataRoot => {
                f.write_str("use kubelet_data_root (kubelet.kubeletRootDir)")
            }
        }
    }
}

/// A flag mapped to its `KubeletConfiguration` field: JSON path segments
/// (e.g. `["authentication", "anonymous", "enabled"]`) and a typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeletField {
    /// JSON path segments from the root of `KubeletConfiguration`.
    pub path: Vec<&'static str>,
    /// The typed value. Objects inside it have their keys in sorted order.
    pub value: Value,
}

impl KubeletField {
    /// The dotted path, as used in reason texts (`authentication.anonymous.enabled`).
    pub fn dotted_path(&self) -> String {
        self.path.join(".")
    }
}

/// How a flag's text becomes a JSON value (kubelet-flags.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Go `strconv.ParseBool`.
    Bool,
    /// Decimal, `int32` range.
    Int32,
    /// Decimal, `int64` range.
    Int64,
    /// Verbosity levels: the field is `uint32`, but the kubelet's flag parser
    /// (`strconv.ParseUint(v, 10, 31)`, for klog compatibility) accepts only 0..=2^31-1.
    Uint31,
    /// YAML float. No flag of kubelet-flags.md binds a float field in 1.32
    /// (`memoryThrottlingFactor` is file-only); kept so the table can name one.
    #[allow(dead_code)]
    Float,
    /// Any text, verbatim.
    Str,
    /// A Kubernetes quantity (`64Ki`), kept as written.
    Quantity,
    /// A Go duration (`1m30s`), kept as written.
    Duration,
    /// Comma-separated list of strings.
    List,
    /// `k=v,k=v` -> mapping of strings.
    MapKv,
    /// `k<v,k<v` -> mapping of strings.
    MapLt,
    /// `A=true,B=false` -> mapping of booleans.
    MapBool,
    /// One `k=v`; the value may contain commas.
    MapNoSplit,
    /// `a:x,b:y` -> mapping of string lists.
    Multimap,
    /// `key=value:Effect,...` -> list of taints.
    Taints,
    /// `<numa>:<res>=<qty>,...` -> one-element list of memory reservations.
    ReservedMemory,
    /// `pattern=N,...` -> list of `{filePattern, verbosity}`.
    VModule,
}

/// Every row of kubelet-flags.md section 3 and its logging table: flag name (without `--`),
/// JSON path of the field, value kind. One place so the two tables cannot drift apart in code.
#[rustfmt::skip]
static FIELDS: &[(&str, &[&str], Kind)] = {
    use Kind::*;
    &[
        ("enable-server", &["enableServer"], Bool),
        ("fail-swap-on", &["failSwapOn"], Bool),
        ("pod-manifest-path", &["staticPodPath"], Str),
        ("sync-frequency", &["syncFrequency"], Duration),
        ("file-check-frequency", &["fileCheckFrequency"], Duration),
        ("http-check-frequency", &["httpCheckFrequency"], Duration),
        ("manifest-url", &["staticPodURL"], Str),
        ("manifest-url-header", &["staticPodURLHeader"], Multimap),
        ("address", &["address"], Str),
        ("port", &["port"], Int32),
        ("read-only-port", &["readOnlyPort"], Int32),
        ("container-runtime-endpoint", &["containerRuntimeEndpoint"], Str),
        ("image-service-endpoint", &["imageServiceEndpoint"], Str),
        ("anonymous-auth", &["authentication", "anonymous", "enabled"], Bool),
        ("authentication-token-webhook", &["authentication", "webhook", "enabled"], Bool),
        ("authentication-token-webhook-cache-ttl", &["authentication", "webhook", "cacheTTL"], Duration),
        ("client-ca-file", &["authentication", "x509", "clientCAFile"], Str),
        ("authorization-mode", &["authorization", "mode"], Str),
        ("authorization-webhook-cache-authorized-ttl", &["authorization", "webhook", "cacheAuthorizedTTL"], Duration),
        ("authorization-webhook-cache-unauthorized-ttl", &["authorization", "webhook", "cacheUnauthorizedTTL"], Duration),
        ("tls-cert-file", &["tlsCertFile"], Str),
        ("tls-private-key-file", &["tlsPrivateKeyFile"], Str),
        ("rotate-server-certificates", &["serverTLSBootstrap"], Bool),
        ("tls-cipher-suites", &["tlsCipherSuites"], List),
        ("tls-min-version", &["tlsMinVersion"], Str),
        ("rotate-certificates", &["rotateCertificates"], Bool),
        ("registry-qps", &["registryPullQPS"], Int32),
        ("registry-burst", &["registryBurst"], Int32),
        ("event-qps", &["eventRecordQPS"], Int32),
        ("event-burst", &["eventBurst"], Int32),
        ("enable-debugging-handlers", &["enableDebuggingHandlers"], Bool),
        ("contention-profiling", &["enableContentionProfiling"], Bool),
        ("healthz-port", &["healthzPort"], Int32),
        ("healthz-bind-address", &["healthzBindAddress"], Str),
        ("oom-score-adj", &["oomScoreAdj"], Int32),
        ("cluster-domain", &["clusterDomain"], Str),
        ("volume-plugin-dir", &["volumePluginDir"], Str),
        ("cluster-dns", &["clusterDNS"], List),
        ("streaming-connection-idle-timeout", &["streamingConnectionIdleTimeout"], Duration),
        ("node-status-update-frequency", &["nodeStatusUpdateFrequency"], Duration),
        ("minimum-image-ttl-duration", &["imageMinimumGCAge"], Duration),
        ("image-gc-high-threshold", &["imageGCHighThresholdPercent"], Int32),
        ("image-gc-low-threshold", &["imageGCLowThresholdPercent"], Int32),
        ("volume-stats-agg-period", &["volumeStatsAggPeriod"], Duration),
        ("feature-gates", &["featureGates"], MapBool),
        ("kubelet-cgroups", &["kubeletCgroups"], Str),
        ("system-cgroups", &["systemCgroups"], Str),
        ("provider-id", &["providerID"], Str),
        ("cgroups-per-qos", &["cgroupsPerQOS"], Bool),
        ("cgroup-driver", &["cgroupDriver"], Str),
        ("cgroup-root", &["cgroupRoot"], Str),
        ("cpu-manager-policy", &["cpuManagerPolicy"], Str),
        ("cpu-manager-policy-options", &["cpuManagerPolicyOptions"], MapNoSplit),
        ("cpu-manager-reconcile-period", &["cpuManagerReconcilePeriod"], Duration),
        ("qos-reserved", &["qosReserved"], MapKv),
        ("topology-manager-policy", &["topologyManagerPolicy"], Str),
        ("topology-manager-scope", &["topologyManagerScope"], Str),
        ("topology-manager-policy-options", &["topologyManagerPolicyOptions"], MapNoSplit),
        ("runtime-request-timeout", &["runtimeRequestTimeout"], Duration),
        ("hairpin-mode", &["hairpinMode"], Str),
        ("max-pods", &["maxPods"], Int32),
        ("pod-cidr", &["podCIDR"], Str),
        ("pod-max-pids", &["podPidsLimit"], Int64),
        ("resolv-conf", &["resolvConf"], Str),
        ("runonce", &["runOnce"], Bool),
        ("cpu-cfs-quota", &["cpuCFSQuota"], Bool),
        ("cpu-cfs-quota-period", &["cpuCFSQuotaPeriod"], Duration),
        ("enable-controller-attach-detach", &["enableControllerAttachDetach"], Bool),
        ("make-iptables-util-chains", &["makeIPTablesUtilChains"], Bool),
        ("iptables-masquerade-bit", &["iptablesMasqueradeBit"], Int32),
        ("iptables-drop-bit", &["iptablesDropBit"], Int32),
        ("container-log-max-size", &["containerLogMaxSize"], Str),
        ("container-log-max-files", &["containerLogMaxFiles"], Int32),
        ("allowed-unsafe-sysctls", &["allowedUnsafeSysctls"], List),
        ("node-status-max-images", &["nodeStatusMaxImages"], Int32),
        ("kernel-memcg-notification", &["kernelMemcgNotification"], Bool),
        ("local-storage-capacity-isolation", &["localStorageCapacityIsolation"], Bool),
        ("max-open-files", &["maxOpenFiles"], Int64),
        ("kube-api-content-type", &["contentType"], Str),
        ("kube-api-qps", &["kubeAPIQPS"], Int32),
        ("kube-api-burst", &["kubeAPIBurst"], Int32),
        ("serialize-image-pulls", &["serializeImagePulls"], Bool),
        ("eviction-hard", &["evictionHard"], MapLt),
        ("eviction-soft", &["evictionSoft"], MapLt),
        ("eviction-soft-grace-period", &["evictionSoftGracePeriod"], MapKv),
        ("eviction-pressure-transition-period", &["evictionPressureTransitionPeriod"], Duration),
        ("eviction-max-pod-grace-period", &["evictionMaxPodGracePeriod"], Int32),
        ("eviction-minimum-reclaim", &["evictionMinimumReclaim"], MapKv),
        ("pods-per-core", &["podsPerCore"], Int32),
        ("protect-kernel-defaults", &["protectKernelDefaults"], Bool),
        ("reserved-cpus", &["reservedSystemCPUs"], Str),
        ("system-reserved", &["systemReserved"], MapKv),
        ("kube-reserved", &["kubeReserved"], MapKv),
        ("enforce-node-allocatable", &["enforceNodeAllocatable"], List),
        ("system-reserved-cgroup", &["systemReservedCgroup"], Str),
        ("kube-reserved-cgroup", &["kubeReservedCgroup"], Str),
        ("memory-manager-policy", &["memoryManagerPolicy"], Str),
        ("reserved-memory", &["reservedMemory"], ReservedMemory),
        ("register-node", &["registerNode"], Bool),
        ("register-with-taints", &["registerWithTaints"], Taints),
        ("fail-cgroupv1", &["failCgroupV1"], Bool),
        ("seccomp-default", &["seccompDefault"], Bool),
        // Logging table.
        ("v", &["logging", "verbosity"], Uint31),
        ("vmodule", &["logging", "vmodule"], VModule),
        ("log-flush-frequency", &["logging", "flushFrequency"], Duration),
        ("logging-format", &["logging", "format"], Str),
        ("log-text-split-stream", &["logging", "options", "text", "splitStream"], Bool),
        ("log-text-info-buffer-size", &["logging", "options", "text", "infoBufferSize"], Quantity),
        ("log-json-split-stream", &["logging", "options", "json", "splitStream"], Bool),
        ("log-json-info-buffer-size", &["logging", "options", "json", "infoBufferSize"], Quantity),
    ]
};

/// kubelet-flags.md section 5: flags the 1.32 kubelet still registers but that have no config
/// field. `-h` is left out: as a single-dash item it never reaches this module, and `--h` is not
/// a kubelet flag.
static NO_FIELD: &[&str] = &[
    "config",
    "config-dir",
    "kubeconfig",
    "bootstrap-kubeconfig",
    "hostname-override",
    "node-ip",
    "cert-dir",
    "cloud-provider",
    "cloud-config",
    "root-dir",
    "node-labels",
    "lock-file",
    "exit-on-lock-contention",
    "minimum-container-ttl-duration",
    "maximum-dead-containers-per-container",
    "maximum-dead-containers",
    "register-schedulable",
    "keep-terminated-pod-volumes",
    "experimental-mounter-path",
    "experimental-allocatable-ignore-eviction",
    "runtime-cgroups",
    "pod-infra-container-image",
    "image-credential-provider-config",
    "image-credential-provider-bin-dir",
    "windows-service",
    "windows-priorityclass",
    "version",
    "help",
];

/// kubelet-flags.md section 6: flags a 1.32 kubelet refuses to start with. The reference calls
/// its list "examples"; only listed flags are known to be removed, anything else unknown stays
/// "unknown" (profiles) or is passed through (extraArgs). `--iptables-masquerade-bit` and
/// `--iptables-drop-bit` are not here: they still parse in 1.32 and have config fields.
static REMOVED: &[&str] = &[
    "container-runtime",
    "network-plugin",
    "network-plugin-mtu",
    "cni-bin-dir",
    "cni-conf-dir",
    "cni-cache-dir",
    "docker-endpoint",
    "image-pull-progress-deadline",
    "dynamic-config-dir",
    "experimental-check-node-capabilities-before-mount",
    "non-masquerade-cidr",
    "master-service-namespace",
    "cadvisor-port",
    "allow-privileged",
    "low-diskspace-threshold-mb",
    "resource-container",
    "network-plugin-dir",
];

/// conversion-rules.md 4.1, extra kubelet rule: k0s writes these itself.
static OWNED_BY_K0S: &[&str] = &["config", "config-dir", "kubeconfig", "bootstrap-kubeconfig"];

/// conversion-rules.md 4.1, extra kubelet rule: one value per node, set from `hosts[]`.
static PER_NODE: &[&str] = &["hostname-override", "node-ip"];

/// conversion-rules.md 4.1, extra kubelet rule: MKE 4k has its own setting.
const ROOT_DIR: &str = "root-dir";

/// The kubelet normalizes `_` to `-` in flag names (`cliflag.WordSepNormalizeFunc`), so
/// `--max_pods` is `--max-pods`; look names up the same way.
fn normalize(name: &str) -> Cow<'_, str> {
    if name.contains('_') {
        Cow::Owned(name.replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

fn lookup(name: &str) -> Option<(&'static [&'static str], Kind)> {
    FIELDS
        .iter()
        .find(|(flag, _, _)| *flag == name)
        .map(|&(_, path, kind)| (path, kind))
}

/// Convert one profile flag (name without `--`, value as parsed by `flags.rs`).
///
/// Not converted: section 5 flags ([`NotConverted::NoField`]), section 6 flags
/// ([`NotConverted::Removed`]), flags in no table ([`NotConverted::Unknown`]) and values that do
/// not parse ([`NotConverted::InvalidValue`]).
pub fn profile_flag(name: &str, value: &str) -> Result<KubeletField, NotConverted> {
    let name = normalize(name);
    if let Some((path, kind)) = lookup(&name) {
        return match convert(kind, value) {
            Some(value) => Ok(KubeletField {
                path: path.to_vec(),
                value,
            }),
            None => Err(invalid(path)),
        };
    }
    Err(no_field_reason(&name))
}

/// [`profile_flag`] for a parsed [`Flag`]. A bare flag (no value at all) is only valid for a
/// bool field; for any other kind the kubelet fails with "flag needs an argument", so it is
/// [`NotConverted::InvalidValue`] here instead of the implied `"true"` becoming e.g. a path.
pub fn convert_profile_flag(flag: &Flag) -> Result<KubeletField, NotConverted> {
    if flag.bare {
        if let Some((path, kind)) = lookup(&normalize(&flag.name)) {
            if kind != Kind::Bool {
                return Err(invalid(path));
            }
        }
    }
    profile_flag(&flag.name, &flag.value)
}

/// For `custom_kubelet_flags` (which go to `kubelet.extraArgs` verbatim): `None` if the flag may
/// be passed through, else why not. Flags no table knows are passed through: the section 6 list
/// is not exhaustive, and refusing a flag the kubelet accepts would lose a setting.
pub fn extra_arg_rejection(name: &str) -> Option<NotConverted> {
    let name = normalize(name);
    let name = name.as_ref();
    if REMOVED.contains(&name) {
        Some(NotConverted::Removed)
    } else if OWNED_BY_K0S.contains(&name) {
        Some(NotConverted::OwnedByK0s)
    } else if PER_NODE.contains(&name) {
        Some(NotConverted::PerNode)
    } else if name == ROOT_DIR {
        Some(NotConverted::UseKubeletDataRoot)
    } else {
        None
    }
}

/// Set `field` inside a JSON object tree, creating nested objects. Every object on the path
/// keeps its keys sorted, so a profile's `values` come out sorted whatever the flag order.
/// An existing value at the full path is replaced.
///
/// Returns `Err(())` (and leaves `root` unchanged) if a path prefix is already a non-object, or
/// if the path is empty.
#[allow(
    clippy::result_unit_err,
    reason = "the only failure is a path conflict; the caller reports it with its own context"
)]
pub fn set_path(root: &mut Map<String, Value>, field: &KubeletField) -> Result<(), ()> {
    let Some((last, parents)) = field.path.split_last() else {
        return Err(());
    };
    // Check first so that a conflict does not leave half-created objects behind.
    let mut probe = &*root;
    for segment in parents {
        match probe.get(*segment) {
            None => break,
            Some(Value::Object(map)) => probe = map,
            Some(_) => return Err(()),
        }
    }
    let mut current = root;
    for segment in parents {
        if !current.contains_key(*segment) {
            current.insert((*segment).to_owned(), Value::Object(Map::new()));
            current.sort_keys();
        }
        current = match current.get_mut(*segment) {
            Some(Value::Object(map)) => map,
            _ => return Err(()),
        };
    }
    if current
        .insert((*last).to_owned(), field.value.clone())
        .is_none()
    {
        current.sort_keys();
    }
    Ok(())
}

fn invalid(path: &[&str]) -> NotConverted {
    NotConverted::InvalidValue {
        field: path.join("."),
    }
}

fn no_field_reason(name: &str) -> NotConverted {
    if NO_FIELD.contains(&name) {
        NotConverted::NoField
    } else if REMOVED.contains(&name) {
        NotConverted::Removed
    } else {
        NotConverted::Unknown
    }
}

/// Converts `value` by `kind`; `None` if it does not parse.
fn convert(kind: Kind, value: &str) -> Option<Value> {
    match kind {
        Kind::Bool => crate::go::parse_bool(value).map(Value::Bool),
        Kind::Int32 => parse_decimal(value)
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Value::from),
        Kind::Int64 => parse_decimal(value).map(Value::from),
        Kind::Uint31 => parse_uint31(value).map(Value::from),
        Kind::Float => parse_float(value),
        Kind::Str => Some(Value::String(value.to_owned())),
        Kind::Quantity => is_quantity(value).then(|| Value::String(value.to_owned())),
        Kind::Duration => crate::go::is_duration(value).then(|| Value::String(value.to_owned())),
        Kind::List => list(value),
        Kind::MapKv => string_map(value, '='),
        Kind::MapLt => string_map(value, '<'),
        Kind::MapBool => bool_map(value),
        Kind::MapNoSplit => nosplit_map(value),
        Kind::Multimap => multimap(value),
        Kind::Taints => taints(value),
        Kind::ReservedMemory => reserved_memory(value),
        Kind::VModule => vmodule(value),
    }
}

/// A decimal integer with an optional sign. pflag parses integers with base 0, where `0x10`,
/// `0o7`, `1_000` are valid and a leading `0` means octal (`010` is 8). Those forms are
/// rejected rather than read as something the kubelet would read differently.
fn parse_decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// `strconv.ParseUint(s, 10, 31)`: digits only (no sign), 0..=2^31-1; base 10, so leading
/// zeros are plain decimal.
fn parse_uint31(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| i32::try_from(*n).is_ok())
}

/// A finite float as a JSON number (never a string: k0s rejects a quoted float).
fn parse_float(s: &str) -> Option<Value> {
    let f: f64 = s.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

/// An object from sorted entries; `None` when empty, because a composite value with no entries
/// is a mistake (an empty list value is invalid by conversion-rules, and maps follow suit).
fn object(entries: BTreeMap<String, Value>) -> Option<Value> {
    if entries.is_empty() {
        None
    } else {
        Some(Value::Object(entries.into_iter().collect()))
    }
}

fn list(value: &str) -> Option<Value> {
    let items: Vec<Value> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_owned()))
        .collect();
    (!items.is_empty()).then_some(Value::Array(items))
}

/// `cliflag.MapStringString` / `LangleSeparatedMapStringString`: split on `,` (empty parts
/// skipped), then on the first `sep`; key and value trimmed; a later key wins.
fn string_map(value: &str, sep: char) -> Option<Value> {
    let mut entries = BTreeMap::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once(sep)?;
        let key = non_empty_key(key)?;
        entries.insert(key, Value::String(val.trim().to_owned()));
    }
    object(entries)
}

/// `cliflag.MapStringBool`: like [`string_map`] with `=`, values by `ParseBool`.
fn bool_map(value: &str) -> Option<Value> {
    let mut entries = BTreeMap::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=')?;
        let key = non_empty_key(key)?;
        entries.insert(key, Value::Bool(crate::go::parse_bool(val.trim())?));
    }
    object(entries)
}

/// `cliflag.MapStringString` with `DisableCommaSeparatedPairs`: exactly one `k=v`.
fn nosplit_map(value: &str) -> Option<Value> {
    let (key, val) = value.split_once('=')?;
    let key = non_empty_key(key)?;
    object(BTreeMap::from([(
        key,
        Value::String(val.trim().to_owned()),
    )]))
}

/// `cliflag.ColonSeparatedMultimapStringString`: `a:x,b:y`, values of one key accumulate in order.
fn multimap(value: &str) -> Option<Value> {
    let mut entries: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once(':')?;
        let key = non_empty_key(key)?;
        entries
            .entry(key)
            .or_default()
            .push(Value::String(val.trim().to_owned()));
    }
    object(
        entries
            .into_iter()
            .map(|(k, v)| (k, Value::Array(v)))
            .collect(),
    )
}

/// Go accepts an empty key, but no field of these maps has a meaning for it and the kubelet's
/// config validation rejects it, so it is invalid here.
fn non_empty_key(key: &str) -> Option<String> {
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// The kubelet's `--register-with-taints` parser (`taints.ParseTaints` on the comma-split value):
/// `key=value:Effect` or `key:Effect`, key a qualified name, value a label value, no two taints
/// with the same key and effect. Parts are not trimmed and empty parts are errors, as in Go.
fn taints(value: &str) -> Option<Value> {
    if value.trim().is_empty() {
        return None;
    }
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut out = Vec::new();
    for spec in value.split(',') {
        // `key-` / `key:Effect-` is kubectl's "remove" syntax; the kubelet drops such specs
        // silently, which is never what a user meant.
        if spec.ends_with('-') {
            return None;
        }
        // An effect is required to add a taint.
        let (key_value, effect) = spec.split_once(':')?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return None;
        }
        let (key, val) = match key_value.split_once('=') {
            Some((_, val)) if val.contains('=') => return None,
            Some((key, val)) => (key, val),
            None => (key_value, ""),
        };
        if !is_qualified_name(key) || !is_label_value(val) || seen.contains(&(key, effect)) {
            return None;
        }
        seen.push((key, effect));
        // Keys in sorted order; `value` is omitted when empty, as `v1.Taint` does (omitempty).
        let mut taint = Map::new();
        taint.insert("effect".to_owned(), Value::String(effect.to_owned()));
        taint.insert("key".to_owned(), Value::String(key.to_owned()));
        if !val.is_empty() {
            taint.insert("value".to_owned(), Value::String(val.to_owned()));
        }
        out.push(Value::Object(taint));
    }
    Some(Value::Array(out))
}

/// The kubelet's `ReservedMemoryVar`: one flag value is one NUMA node,
/// `<numa>:<resource>=<quantity>[,<resource>=<quantity>...]`; resources are `memory` or
/// `hugepages-<size>`. Yields a one-element list (a repeated flag is an error upstream).
fn reserved_memory(value: &str) -> Option<Value> {
    let (numa, limits) = value.split_once(':')?;
    if limits.contains(':') {
        return None;
    }
    // `strconv.Atoi` syntax (optional sign, decimal), within the field's int32.
    let numa: i32 = numa.parse().ok()?;
    let mut entries = BTreeMap::new();
    for limit in limits.split(',') {
        let (resource, quantity) = limit.split_once('=')?;
        if quantity.contains('=')
            || !(resource == "memory" || resource.starts_with("hugepages-"))
            || !is_quantity(quantity)
        {
            return None;
        }
        entries.insert(resource.to_owned(), Value::String(quantity.to_owned()));
    }
    let mut reservation = Map::new();
    reservation.insert("limits".to_owned(), object(entries)?);
    reservation.insert("numaNode".to_owned(), Value::from(numa));
    Some(Value::Array(vec![Value::Object(reservation)]))
}

/// component-base `VModuleConfigurationPflag`: `pattern=N` items, empty items skipped, N by
/// `ParseUint(N, 10, 31)`. Order is kept (klog uses the first matching pattern).
fn vmodule(value: &str) -> Option<Value> {
    let mut out = Vec::new();
    for item in value.split(',').filter(|p| !p.is_empty()) {
        let (pattern, level) = item.split_once('=')?;
        if pattern.is_empty() || level.contains('=') {
            return None;
        }
        let level = parse_uint31(level)?;
        let mut entry = Map::new();
        entry.insert("filePattern".to_owned(), Value::String(pattern.to_owned()));
        entry.insert("verbosity".to_owned(), Value::from(level));
        out.push(Value::Object(entry));
    }
    (!out.is_empty()).then_some(Value::Array(out))
}

/// A Kubernetes `resource.Quantity`: `[+-]<number><suffix>`, number `d`, `d.d`, `d.` or `.d`,
/// suffix a binary SI (`Ki`..`Ei`), a decimal SI (`n u m k M G T P E` or none) or an exponent
/// (`e3`, `E-2`).
fn is_quantity(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let int_len = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    let (_, rest) = unsigned.split_at(int_len);
    let (frac_len, suffix) = match rest.strip_prefix('.') {
        Some(tail) => {
            let n = tail.bytes().take_while(u8::is_ascii_digit).count();
            (n, tail.split_at(n).1)
        }
        None => (0, rest),
    };
    if int_len == 0 && frac_len == 0 {
        return false;
    }
    match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti"
        | "Pi" | "Ei" => true,
        _ => suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }),
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: the name part of a
/// qualified name and a non-empty label value.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `validation.IsValidLabelValue`: empty, or a label name.
fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// `validation.IsQualifiedName`: `[prefix/]name`, prefix a DNS-1123 subdomain.
fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        None => is_label_name(s),
        Some((prefix, name)) => {
            !name.contains('/') && is_dns1123_subdomain(prefix) && is_label_name(name)
        }
    }
}

/// `validation.IsDNS1123Subdomain`: at most 253 characters, dot-separated labels of
/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    first.is_ascii_alphanumeric()
                        && last.is_ascii_alphanumeric()
                        && b.iter()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{FlagItem, parse_flag_list, split_profile};
    use serde_json::json;

    fn ok(name: &str, value: &str) -> Value {
        match profile_flag(name, value) {
            Ok(field) => field.value,
            Err(e) => panic!("--{name}={value:?}: {e}"),
        }
    }

    fn err(name: &str, value: &str) -> String {
        match profile_flag(name, value) {
            Ok(field) => panic!("--{name}={value:?} converted to {:?}", field.value),
            Err(e) => e.to_string(),
        }
    }

    fn path(name: &str) -> String {
        match lookup(name) {
            Some((path, _)) => path.join("."),
            None => panic!("{name} not in the table"),
        }
    }

    fn invalid_for(name: &str, value: &str) {
        assert_eq!(
            err(name, value),
            format!("invalid value for {}", path(name)),
            "--{name}={value:?}"
        );
    }

    /// Serialized with key order, to check that objects come out sorted.
    fn text(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    /// A profile string converted the way the lead's code does: split, parse, convert, set.
    fn profile(s: &str) -> (Map<String, Value>, Vec<(String, String)>) {
        let mut values = Map::new();
        let mut failed = Vec::new();
        for item in parse_flag_list(&split_profile(s)) {
            match item {
                FlagItem::Flag(flag) => match convert_profile_flag(&flag) {
                    Ok(field) => set_path(&mut values, &field).unwrap(),
                    Err(e) => failed.push((flag.original, e.to_string())),
                },
                FlagItem::NotAFlag { original } => failed.push((original, "not a --flag".into())),
            }
        }
        (values, failed)
    }

    // --- Reason texts. ---

    #[test]
    fn display_texts() {
        let cases = [
            (NotConverted::NoField, "no KubeletConfiguration field"),
            (
                NotConverted::Removed,
                "removed from the kubelet in the target Kubernetes version",
            ),
            (NotConverted::Unknown, "unknown kubelet flag"),
            (
                NotConverted::InvalidValue {
                    field: "kubeReserved".into(),
                },
                "invalid value for kubeReserved",
            ),
            (NotConverted::OwnedByK0s, "owned by k0s"),
            (
                NotConverted::PerNode,
                "per-node setting; use hosts[].hostname / privateAddress",
            ),
            (
                NotConverted::UseKubeletDataRoot,
                "use kubelet_data_root (kubelet.kubeletRootDir)",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want);
        }
    }

    // --- kubelet-flags.md section 7, worked examples. ---

    #[test]
    fn worked_example_custom_kubelet_flags_pass_through() {
        let items = [
            "--http-check-frequency=20s",
            "--kube-api-qps=200",
            "--kube-api-burst=200",
        ];
        for item in parse_flag_list(&items) {
            let FlagItem::Flag(flag) = item else {
                panic!("not a flag")
            };
            assert_eq!(extra_arg_rejection(&flag.name), None, "{}", flag.name);
        }
    }

    #[test]
    fn worked_example_profile_high() {
        let (values, failed) =
            profile("--kube-reserved=cpu=200m,memory=512Mi --kube-reserved-cgroup=/high");
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(
            text(&Value::Object(values)),
            r#"{"kubeReserved":{"cpu":"200m","memory":"512Mi"},"kubeReservedCgroup":"/high"}"#
        );
    }

    #[test]
    fn profile_with_failures_keeps_the_rest_sorted() {
        let (values, failed) = profile(
            "--v=3 --max-pods 200 --anonymous-auth=false --authentication-token-webhook \
             --network-plugin=cni --node-labels=a=b --bogus=1 x --cgroup-root",
        );
        assert_eq!(
            Value::Object(values.clone()),
            json!({
                "authentication": {"anonymous": {"enabled": false}, "webhook": {"enabled": true}},
                "logging": {"verbosity": 3},
                "maxPods": 200,
            })
        );
        assert_eq!(
            text(&Value::Object(values)),
            r#"{"authentication":{"anonymous":{"enabled":false},"webhook":{"enabled":true}},"logging":{"verbosity":3},"maxPods":200}"#
        );
        let want: Vec<(String, String)> = [
            (
                "--network-plugin=cni",
                "removed from the kubelet in the target Kubernetes version",
            ),
            ("--node-labels=a=b", "no KubeletConfiguration field"),
            ("--bogus=1", "unknown kubelet flag"),
            ("x", "not a --flag"),
            ("--cgroup-root", "invalid value for cgroupRoot"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(failed, want);
    }

    // --- kubelet-flags.md section 2, one example per kind row. ---

    #[test]
    fn section2_examples() {
        assert_eq!(ok("fail-swap-on", "false"), json!(false));
        assert_eq!(ok("max-pods", "200"), json!(200));
        assert_eq!(ok("cgroup-driver", "systemd"), json!("systemd"));
        assert_eq!(ok("http-check-frequency", "20s"), json!("20s"));
        assert_eq!(ok("cluster-dns", "10.96.0.10"), json!(["10.96.0.10"]));
        assert_eq!(
            ok("kube-reserved", "cpu=200m,memory=512Mi"),
            json!({"cpu": "200m", "memory": "512Mi"})
        );
        assert_eq!(
            ok(
                "eviction-hard",
                "memory.available<100Mi,nodefs.available<10%"
            ),
            json!({"memory.available": "100Mi", "nodefs.available": "10%"})
        );
        assert_eq!(
            ok("feature-gates", "A=true,B=false"),
            json!({"A": true, "B": false})
        );
        assert_eq!(
            ok("cpu-manager-policy-options", "full-pcpus-only=true"),
            json!({"full-pcpus-only": "true"})
        );
        assert_eq!(
            ok("manifest-url-header", "a:x,b:y"),
            json!({"a": ["x"], "b": ["y"]})
        );
        assert_eq!(
            ok("register-with-taints", "k=v:NoSchedule"),
            json!([{"key": "k", "value": "v", "effect": "NoSchedule"}])
        );
        assert_eq!(
            ok("reserved-memory", "0:memory=1Gi,hugepages-1M=2Gi"),
            json!([{"numaNode": 0, "limits": {"memory": "1Gi", "hugepages-1M": "2Gi"}}])
        );
        assert_eq!(
            ok("vmodule", "foo*=4"),
            json!([{"filePattern": "foo*", "verbosity": 4}])
        );
    }

    #[test]
    fn section2_examples_full_paths() {
        let field = profile_flag("vmodule", "foo*=4").unwrap();
        assert_eq!(field.path, vec!["logging", "vmodule"]);
        assert_eq!(field.dotted_path(), "logging.vmodule");
        let field = profile_flag("manifest-url-header", "a:x").unwrap();
        assert_eq!(field.path, vec!["staticPodURLHeader"]);
    }

    // --- bool ---

    #[test]
    fn bool_accepts_exactly_go_parsebool() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(ok("fail-swap-on", s), json!(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(ok("fail-swap-on", s), json!(false), "{s}");
        }
        for s in [
            "", "yes", "no", "tRUE", "fALSE", " true", "true ", "2", "on",
        ] {
            invalid_for("fail-swap-on", s);
        }
        assert_eq!(ok("anonymous-auth", "false"), json!(false));
        invalid_for("anonymous-auth", "maybe");
        assert_eq!(
            err("anonymous-auth", "maybe"),
            "invalid value for authentication.anonymous.enabled"
        );
    }

    // --- int ---

    #[test]
    fn int32_range_and_syntax() {
        assert_eq!(ok("max-pods", "2147483647"), json!(2_147_483_647));
        assert_eq!(
            ok("oom-score-adj", "-2147483648"),
            json!(-2_147_483_648_i64)
        );
        assert_eq!(ok("oom-score-adj", "-999"), json!(-999));
        assert_eq!(ok("max-pods", "+5"), json!(5));
        assert_eq!(ok("max-pods", "0"), json!(0));
        assert_eq!(ok("max-pods", "-0"), json!(0));
        for s in [
            "2147483648",
            "-2147483649",
            "",
            "+",
            "-",
            "1.0",
            "1e3",
            "0x10",
            "010",
            "1_000",
            " 5",
            "5 ",
            "five",
            "99999999999999999999999",
        ] {
            invalid_for("max-pods", s);
        }
        assert!(ok("max-pods", "110").is_i64());
    }

    #[test]
    fn int64_range() {
        assert_eq!(
            ok("max-open-files", "9223372036854775807"),
            json!(9_223_372_036_854_775_807_i64)
        );
        assert_eq!(ok("pod-max-pids", "-9223372036854775808"), json!(i64::MIN));
        assert_eq!(ok("pod-max-pids", "-1"), json!(-1));
        assert_eq!(ok("pod-max-pids", "4294967296"), json!(4_294_967_296_i64));
        invalid_for("max-open-files", "9223372036854775808");
        invalid_for("pod-max-pids", "-9223372036854775809");
        invalid_for("pod-max-pids", "1k");
    }

    #[test]
    fn verbosity_is_the_klog_range() {
        assert_eq!(ok("v", "2"), json!(2));
        assert_eq!(ok("v", "0"), json!(0));
        // ParseUint with base 10: leading zeros are decimal.
        assert_eq!(ok("v", "007"), json!(7));
        assert_eq!(ok("v", "2147483647"), json!(2_147_483_647));
        for s in ["-1", "+1", "2147483648", "4294967295", "", "1.5", "high"] {
            invalid_for("v", s);
        }
        assert_eq!(err("v", "x"), "invalid value for logging.verbosity");
    }

    // --- float (no 1.32 flag binds one; tested through the converter) ---

    #[test]
    fn float_is_a_json_number() {
        let v = convert(Kind::Float, "0.9").unwrap();
        assert_eq!(v, json!(0.9));
        assert!(v.is_f64());
        let v = convert(Kind::Float, "1").unwrap();
        assert!(v.is_f64());
        assert_eq!(text(&v), "1.0");
        assert_eq!(convert(Kind::Float, "-2.5e-1"), Some(json!(-0.25)));
        for s in ["", "abc", "inf", "-inf", "NaN", "1e400", "0.9 ", "1,5"] {
            assert_eq!(convert(Kind::Float, s), None, "{s:?}");
        }
    }

    // --- string ---

    #[test]
    fn string_is_verbatim() {
        assert_eq!(ok("pod-manifest-path", "/etc/k"), json!("/etc/k"));
        assert_eq!(ok("cgroup-root", ""), json!(""));
        assert_eq!(ok("tls-min-version", "VersionTLS12"), json!("VersionTLS12"));
        assert_eq!(ok("authorization-mode", "Webhook"), json!("Webhook"));
        assert_eq!(ok("reserved-cpus", "0-3,8"), json!("0-3,8"));
        assert_eq!(ok("cgroup-driver", "true"), json!("true"));
    }

    // --- quantity ---

    #[test]
    fn quantity_strings() {
        for s in [
            "64Ki", "1Mi", "1.5Gi", "100", "0", ".5", "5.", "1e3", "1E-2", "+1k", "-1m", "2E",
        ] {
            assert_eq!(ok("log-text-info-buffer-size", s), json!(s), "{s}");
        }
        for s in [
            "", "abc", "1KB", "1ki", "1e", "1e+", ".", "+", "1 Mi", "1Mi ",
        ] {
            invalid_for("log-json-info-buffer-size", s);
        }
    }

    // --- duration ---

    #[test]
    fn durations_go_accepts() {
        for s in [
            "0",
            "+0",
            "-0",
            "300ms",
            "1.5h",
            "2h45m",
            "-1.5h",
            "20s",
            "5m0s",
            "1ns",
            "1us",
            "1µs",
            "1μs",
            "1h2m3s4ms5us6ns",
            ".5s",
            "1.s",
            "0s",
            "00s",
            "+3m",
            "9223372036854775807ns",
            "-9223372036854775808ns",
            "2562047h47m16.854775807s",
            "1.000000000000000000000000001s",
        ] {
            assert_eq!(ok("sync-frequency", s), json!(s), "{s}");
        }
    }

    #[test]
    fn durations_go_rejects() {
        for s in [
            "",
            "1",
            "00",
            "-",
            "+",
            "s",
            ".s",
            ".",
            "1sec",
            "1S",
            "1H",
            "1d",
            "1.5",
            "--1s",
            "+-1s",
            " 1s",
            "1s ",
            "1 s",
            "1e3s",
            "1h-1m",
            "1m.",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "2562048h",
            "2562047h47m16.854775808s",
            "99999999999999999999s",
        ] {
            invalid_for("sync-frequency", s);
        }
        assert_eq!(
            err("authorization-webhook-cache-authorized-ttl", "5x"),
            "invalid value for authorization.webhook.cacheAuthorizedTTL"
        );
    }

    // --- list ---

    #[test]
    fn list_splits_trims_and_drops_empty_items() {
        assert_eq!(
            ok("tls-cipher-suites", "TLS_A, TLS_B,,TLS_C,"),
            json!(["TLS_A", "TLS_B", "TLS_C"])
        );
        assert_eq!(
            ok("enforce-node-allocatable", "pods,kube-reserved"),
            json!(["pods", "kube-reserved"])
        );
        assert_eq!(ok("allowed-unsafe-sysctls", "net.*"), json!(["net.*"]));
        for s in ["", " ", ",", " , ,"] {
            invalid_for("cluster-dns", s);
        }
    }

    // --- map-kv / map-lt ---

    #[test]
    fn map_kv() {
        // Keys come out sorted whatever the input order; values keep `=` after the first one.
        let v = ok("system-reserved", "memory=1Gi, cpu = 500m ,pid=100,");
        assert_eq!(text(&v), r#"{"cpu":"500m","memory":"1Gi","pid":"100"}"#);
        assert_eq!(ok("qos-reserved", "memory=50%"), json!({"memory": "50%"}));
        assert_eq!(ok("eviction-minimum-reclaim", "a=b=c"), json!({"a": "b=c"}));
        // A later key wins, as in the kubelet's parser.
        assert_eq!(ok("kube-reserved", "cpu=1,cpu=2"), json!({"cpu": "2"}));
        assert_eq!(ok("kube-reserved", "cpu="), json!({"cpu": ""}));
        assert_eq!(
            ok("eviction-soft-grace-period", "memory.available=1m30s"),
            json!({"memory.available": "1m30s"})
        );
        for s in ["", ",", "cpu", "cpu=1,memory", "=1", " =1", "cpu<1"] {
            invalid_for("kube-reserved", s);
        }
        assert_eq!(
            err("kube-reserved", "cpu"),
            "invalid value for kubeReserved"
        );
    }

    #[test]
    fn map_lt() {
        let v = ok(
            "eviction-soft",
            "nodefs.available<15%,memory.available < 1.5Gi",
        );
        assert_eq!(
            text(&v),
            r#"{"memory.available":"1.5Gi","nodefs.available":"15%"}"#
        );
        for s in ["", "memory.available=100Mi", "<1", "a<1,b"] {
            invalid_for("eviction-hard", s);
        }
    }

    // --- map-bool ---

    #[test]
    fn map_bool() {
        let v = ok("feature-gates", "Zeta=1, Alpha = F,Beta=True,");
        assert_eq!(text(&v), r#"{"Alpha":false,"Beta":true,"Zeta":true}"#);
        for s in ["", "A", "A=yes", "A=true,B", "=true", "A=tru e"] {
            invalid_for("feature-gates", s);
        }
    }

    // --- map-nosplit ---

    #[test]
    fn map_nosplit_keeps_commas() {
        assert_eq!(
            ok(
                "topology-manager-policy-options",
                "prefer-closest-numa-nodes=true"
            ),
            json!({"prefer-closest-numa-nodes": "true"})
        );
        assert_eq!(
            ok("cpu-manager-policy-options", "a=b,c=d"),
            json!({"a": "b,c=d"})
        );
        for s in ["", "full-pcpus-only", "=true"] {
            invalid_for("cpu-manager-policy-options", s);
        }
    }

    // --- multimap ---

    #[test]
    fn multimap_accumulates() {
        let v = ok("manifest-url-header", "b:y,a:x,a:z,c:u:v,");
        assert_eq!(text(&v), r#"{"a":["x","z"],"b":["y"],"c":["u:v"]}"#);
        for s in ["", ",", "a", "a:x,b", ":x"] {
            invalid_for("manifest-url-header", s);
        }
    }

    // --- taints ---

    #[test]
    fn taints() {
        let v = ok(
            "register-with-taints",
            "dedicated=gpu:NoSchedule,example.com/maint:NoExecute,k=:PreferNoSchedule,dedicated:NoExecute",
        );
        assert_eq!(
            text(&v),
            concat!(
                r#"[{"effect":"NoSchedule","key":"dedicated","value":"gpu"},"#,
                r#"{"effect":"NoExecute","key":"example.com/maint"},"#,
                r#"{"effect":"PreferNoSchedule","key":"k"},"#,
                r#"{"effect":"NoExecute","key":"dedicated"}]"#
            )
        );
        for s in [
            "",
            "k=v",
            "k",
            "k=v:Bad",
            "k=v:noschedule",
            "k=v:NoSchedule-",
            "k-",
            "k=v:NoSchedule:NoExecute",
            "a=b=c:NoSchedule",
            "=v:NoSchedule",
            "-k=v:NoSchedule",
            "k=-v:NoSchedule",
            "k=v v:NoSchedule",
            "Example.com/k:NoSchedule",
            "/k:NoSchedule",
            "a/b/c:NoSchedule",
            "k=v:NoSchedule,",
            " k=v:NoSchedule",
            "k=1:NoSchedule,k=2:NoSchedule",
        ] {
            invalid_for("register-with-taints", s);
        }
        // Same key with another effect is a different taint.
        assert_eq!(
            ok("register-with-taints", "k:NoSchedule,k:NoExecute")
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let long = "a".repeat(63);
        assert!(profile_flag("register-with-taints", &format!("{long}:NoSchedule")).is_ok());
        invalid_for("register-with-taints", &format!("{long}a:NoSchedule"));
    }

    // --- reserved-memory ---

    #[test]
    fn reserved_memory() {
        let v = ok("reserved-memory", "1:memory=1Gi,hugepages-2Mi=512Mi");
        assert_eq!(
            text(&v),
            r#"[{"limits":{"hugepages-2Mi":"512Mi","memory":"1Gi"},"numaNode":1}]"#
        );
        for s in [
            "",
            "0",
            "0:",
            "x:memory=1Gi",
            ":memory=1Gi",
            "0:cpu=1",
            "0:memory",
            "0:memory=abc",
            "0:memory=1Gi,",
            "0:memory=1Gi=2",
            "0:memory=1Gi;1:memory=1Gi",
            "0:memory=1Gi,1:memory=2Gi",
            "2147483648:memory=1Gi",
        ] {
            invalid_for("reserved-memory", s);
        }
    }

    // --- vmodule ---

    #[test]
    fn vmodule_keeps_order() {
        let v = ok("vmodule", "zz*=1,aa=2,");
        assert_eq!(
            text(&v),
            r#"[{"filePattern":"zz*","verbosity":1},{"filePattern":"aa","verbosity":2}]"#
        );
        for s in [
            "",
            ",",
            "foo",
            "=4",
            "foo=",
            "foo=-1",
            "foo=2147483648",
            "foo=1=2",
            "foo=x",
        ] {
            invalid_for("vmodule", s);
        }
    }

    // --- Table lookups and reasons. ---

    #[test]
    fn table_integrity() {
        assert_eq!(FIELDS.len(), 110, "102 rows of section 3 + 8 logging rows");
        for (i, (name, path, _)) in FIELDS.iter().enumerate() {
            assert!(!path.is_empty(), "{name}");
            assert!(
                FIELDS[..i].iter().all(|(other, _, _)| other != name),
                "duplicate {name}"
            );
            assert!(!NO_FIELD.contains(name), "{name} also in section 5");
            assert!(!REMOVED.contains(name), "{name} also in section 6");
            // No field may sit under another flag's field, or set_path would conflict.
            for (other, other_path, _) in FIELDS {
                if other != name {
                    assert!(!other_path.starts_with(path), "{other} is under {name}");
                }
            }
        }
        for name in NO_FIELD {
            assert!(!REMOVED.contains(name), "{name}");
        }
        assert_eq!(NO_FIELD.len(), 28);
        assert_eq!(REMOVED.len(), 17);
    }

    #[test]
    fn every_table_row_converts_a_sample_value() {
        let mut values = Map::new();
        for (name, path, kind) in FIELDS {
            let sample = match kind {
                Kind::Bool => "true",
                Kind::Int32 | Kind::Int64 | Kind::Uint31 => "5",
                Kind::Float => "0.5",
                Kind::Str => "x",
                Kind::Quantity => "64Ki",
                Kind::Duration => "1m30s",
                Kind::List => "a,b",
                Kind::MapKv | Kind::MapNoSplit => "a=b",
                Kind::MapLt => "a<b",
                Kind::MapBool => "A=true",
                Kind::Multimap => "a:b",
                Kind::Taints => "k=v:NoSchedule",
                Kind::ReservedMemory => "0:memory=1Gi",
                Kind::VModule => "a=1",
            };
            let field = profile_flag(name, sample).unwrap();
            assert_eq!(field.path, path.to_vec());
            // All fields of one profile fit in one tree.
            set_path(&mut values, &field).unwrap();
        }
        assert!(values.contains_key("logging"));
    }

    #[test]
    fn renamed_and_nested_fields() {
        let cases = [
            ("pod-manifest-path", "staticPodPath"),
            ("manifest-url", "staticPodURL"),
            ("manifest-url-header", "staticPodURLHeader"),
            ("anonymous-auth", "authentication.anonymous.enabled"),
            (
                "authentication-token-webhook",
                "authentication.webhook.enabled",
            ),
            (
                "authentication-token-webhook-cache-ttl",
                "authentication.webhook.cacheTTL",
            ),
            ("client-ca-file", "authentication.x509.clientCAFile"),
            ("authorization-mode", "authorization.mode"),
            (
                "authorization-webhook-cache-authorized-ttl",
                "authorization.webhook.cacheAuthorizedTTL",
            ),
            (
                "authorization-webhook-cache-unauthorized-ttl",
                "authorization.webhook.cacheUnauthorizedTTL",
            ),
            ("rotate-server-certificates", "serverTLSBootstrap"),
            ("registry-qps", "registryPullQPS"),
            ("event-qps", "eventRecordQPS"),
            ("contention-profiling", "enableContentionProfiling"),
            ("minimum-image-ttl-duration", "imageMinimumGCAge"),
            ("image-gc-high-threshold", "imageGCHighThresholdPercent"),
            ("image-gc-low-threshold", "imageGCLowThresholdPercent"),
            ("pod-max-pids", "podPidsLimit"),
            ("kube-api-content-type", "contentType"),
            ("reserved-cpus", "reservedSystemCPUs"),
            ("runonce", "runOnce"),
            ("fail-cgroupv1", "failCgroupV1"),
            ("make-iptables-util-chains", "makeIPTablesUtilChains"),
            ("cpu-cfs-quota-period", "cpuCFSQuotaPeriod"),
            ("iptables-masquerade-bit", "iptablesMasqueradeBit"),
            ("iptables-drop-bit", "iptablesDropBit"),
            ("provider-id", "providerID"),
            ("seccomp-default", "seccompDefault"),
            ("v", "logging.verbosity"),
            ("log-flush-frequency", "logging.flushFrequency"),
            ("logging-format", "logging.format"),
            ("log-text-split-stream", "logging.options.text.splitStream"),
            (
                "log-text-info-buffer-size",
                "logging.options.text.infoBufferSize",
            ),
            ("log-json-split-stream", "logging.options.json.splitStream"),
            (
                "log-json-info-buffer-size",
                "logging.options.json.infoBufferSize",
            ),
        ];
        for (flag, field) in cases {
            assert_eq!(path(flag), field, "{flag}");
        }
    }

    #[test]
    fn section5_flags_have_no_field() {
        for name in [
            "config",
            "kubeconfig",
            "hostname-override",
            "node-ip",
            "cert-dir",
            "cloud-provider",
            "root-dir",
            "node-labels",
            "pod-infra-container-image",
            "image-credential-provider-config",
            "version",
            "help",
        ] {
            assert_eq!(
                profile_flag(name, "x"),
                Err(NotConverted::NoField),
                "{name}"
            );
        }
    }

    #[test]
    fn section6_flags_are_removed() {
        for name in REMOVED {
            assert_eq!(
                profile_flag(name, "x"),
                Err(NotConverted::Removed),
                "{name}"
            );
        }
        for name in [
            "network-plugin",
            "container-runtime",
            "cadvisor-port",
            "allow-privileged",
        ] {
            assert_eq!(
                err(name, "x"),
                "removed from the kubelet in the target Kubernetes version"
            );
        }
        // "Has no effect" but still parsed by 1.32: converted.
        assert_eq!(ok("iptables-masquerade-bit", "14"), json!(14));
    }

    #[test]
    fn unknown_flags() {
        for name in ["bogus", "", "-v", "h", "max-pod", "MAX-PODS", "logtostderr"] {
            assert_eq!(
                profile_flag(name, "1"),
                Err(NotConverted::Unknown),
                "{name:?}"
            );
        }
    }

    #[test]
    fn underscores_are_dashes_like_in_the_kubelet() {
        assert_eq!(ok("max_pods", "7"), json!(7));
        assert_eq!(profile_flag("root_dir", "/x"), Err(NotConverted::NoField));
        assert_eq!(
            profile_flag("network_plugin", "x"),
            Err(NotConverted::Removed)
        );
        assert_eq!(
            extra_arg_rejection("root_dir"),
            Some(NotConverted::UseKubeletDataRoot)
        );
        assert_eq!(err("max_pods", "x"), "invalid value for maxPods");
    }

    // --- Bare flags. ---

    #[test]
    fn bare_flag_is_only_valid_for_bool_fields() {
        let parsed = parse_flag_list(&[
            "--fail-swap-on",
            "--pod-manifest-path",
            "--cluster-dns",
            "--bogus",
            "--cert-dir",
        ]);
        let results: Vec<Result<KubeletField, NotConverted>> = parsed
            .iter()
            .map(|item| match item {
                FlagItem::Flag(flag) => convert_profile_flag(flag),
                FlagItem::NotAFlag { .. } => panic!("not a flag"),
            })
            .collect();
        assert_eq!(
            results[0].as_ref().map(|f| f.value.clone()),
            Ok(json!(true))
        );
        assert_eq!(
            results[1],
            Err(NotConverted::InvalidValue {
                field: "staticPodPath".into()
            })
        );
        assert_eq!(
            results[2],
            Err(NotConverted::InvalidValue {
                field: "clusterDNS".into()
            })
        );
        assert_eq!(results[3], Err(NotConverted::Unknown));
        assert_eq!(results[4], Err(NotConverted::NoField));
        // With an explicit value the string flag converts, even to "true".
        let explicit = parse_flag_list(&["--pod-manifest-path=true"]);
        let FlagItem::Flag(flag) = &explicit[0] else {
            panic!()
        };
        assert_eq!(
            convert_profile_flag(flag).map(|f| f.value),
            Ok(json!("true"))
        );
    }

    // --- extraArgs. ---

    #[test]
    fn extra_arg_rejections() {
        for name in REMOVED {
            assert_eq!(
                extra_arg_rejection(name),
                Some(NotConverted::Removed),
                "{name}"
            );
        }
        for name in ["config", "config-dir", "kubeconfig", "bootstrap-kubeconfig"] {
            assert_eq!(
                extra_arg_rejection(name),
                Some(NotConverted::OwnedByK0s),
                "{name}"
            );
        }
        for name in ["hostname-override", "node-ip"] {
            assert_eq!(
                extra_arg_rejection(name),
                Some(NotConverted::PerNode),
                "{name}"
            );
        }
        assert_eq!(
            extra_arg_rejection("root-dir"),
            Some(NotConverted::UseKubeletDataRoot)
        );
        // Everything else passes: section 3, the rest of section 5, and unknown flags.
        for name in [
            "max-pods",
            "v",
            "cert-dir",
            "node-labels",
            "cloud-provider",
            "pod-infra-container-image",
            "iptables-masquerade-bit",
            "totally-unknown",
        ] {
            assert_eq!(extra_arg_rejection(name), None, "{name}");
        }
    }

    // --- set_path. ---

    fn field(path: &[&'static str], value: Value) -> KubeletField {
        KubeletField {
            path: path.to_vec(),
            value,
        }
    }

    #[test]
    fn set_path_creates_nested_sorted_objects() {
        let mut root = Map::new();
        set_path(&mut root, &field(&["maxPods"], json!(1))).unwrap();
        set_path(
            &mut root,
            &field(&["authentication", "webhook", "enabled"], json!(true)),
        )
        .unwrap();
        set_path(
            &mut root,
            &field(&["authentication", "anonymous", "enabled"], json!(false)),
        )
        .unwrap();
        set_path(
            &mut root,
            &field(&["authentication", "webhook", "cacheTTL"], json!("2m")),
        )
        .unwrap();
        set_path(&mut root, &field(&["address"], json!("0.0.0.0"))).unwrap();
        assert_eq!(
            text(&Value::Object(root)),
            r#"{"address":"0.0.0.0","authentication":{"anonymous":{"enabled":false},"webhook":{"cacheTTL":"2m","enabled":true}},"maxPods":1}"#
        );
    }

    #[test]
    fn set_path_replaces_a_leaf() {
        let mut root = Map::new();
        set_path(&mut root, &field(&["a", "b"], json!(1))).unwrap();
        set_path(&mut root, &field(&["a", "b"], json!(2))).unwrap();
        assert_eq!(Value::Object(root), json!({"a": {"b": 2}}));
    }

    #[test]
    fn set_path_conflict_leaves_root_unchanged() {
        let mut root = Map::new();
        set_path(&mut root, &field(&["a", "b"], json!(1))).unwrap();
        let before = root.clone();
        assert_eq!(
            set_path(&mut root, &field(&["a", "b", "c"], json!(2))),
            Err(())
        );
        assert_eq!(
            set_path(&mut root, &field(&["a", "b", "c", "d"], json!(2))),
            Err(())
        );
        assert_eq!(root, before);
        assert_eq!(set_path(&mut root, &field(&[], json!(2))), Err(()));
        assert_eq!(root, before);
    }

    #[test]
    fn set_path_leaf_may_replace_an_object() {
        // Only a non-object prefix is a conflict; the table never produces this (checked in
        // `table_integrity`), so the simple "replace" rule is enough.
        let mut root = Map::new();
        set_path(&mut root, &field(&["a", "b"], json!(1))).unwrap();
        set_path(&mut root, &field(&["a"], json!(3))).unwrap();
        assert_eq!(Value::Object(root), json!({"a": 3}));
    }
}
