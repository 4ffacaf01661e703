//! `ferry init`: the MKE 4k configuration, default or converted from an MKE 3 config-toml.

use std::path::{Path, PathBuf};

use ferry_config_convert::{self as convert, Conversion, Options};

use crate::{CliError, Format, Output, fsio};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The MKE 3 config-toml to convert (as exported by `GET /api/ucp/config-toml`). Without it,
    /// the default MKE 4k configuration is printed.
    #[arg(long, value_name = "FILE")]
    pub mke3_config: Option<PathBuf>,
    /// Write the MKE 4k YAML to this file (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// DNS name (or name:port) of the load balancer in front of the managers.
    #[arg(long, value_name = "ADDRESS")]
    pub external_address: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Format of the report: text (YAML on stdout, report on stderr) or json (one JSON report
    /// on stdout; the YAML goes to --config-out or into the report).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// The MKE 4k cluster to convert for (`ferry init` and `ferry upgrade`).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Registry of the MKE 4k images (no trailing slash).
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
    /// Registry of the MKE 4k charts (`oci://...`, no trailing slash).
    #[arg(long, value_name = "OCI_REGISTRY")]
    pub chart_registry: Option<String>,
    /// PEM file of the CA that signed the image registry's certificate
    /// (registries.imageRegistry.caData).
    #[arg(long, value_name = "PEM")]
    pub image_registry_ca_file: Option<PathBuf>,
    /// PEM file of the CA that signed the chart registry's certificate
    /// (registries.chartRegistry.caData).
    #[arg(long, value_name = "PEM")]
    pub chart_registry_ca_file: Option<PathBuf>,
    /// The cluster has no internet access: needs --image-registry and --chart-registry.
    #[arg(long)]
    pub mke3_airgapped: bool,
    /// The Envoy gateway's HTTP node port (gatewayMKEIngress.nodePorts.http, 4.1.3+); with
    /// --gateway-https-node-port required by an upgrade to 4.1.5 unless --remove-ingress-nginx.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub gateway_http_node_port: Option<u16>,
    /// The Envoy gateway's HTTPS node port (gatewayMKEIngress.nodePorts.https, 4.1.3+).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub gateway_https_node_port: Option<u16>,
    /// Do not carry ingress-nginx over (ingressController.enabled: false).
    #[arg(long)]
    pub remove_ingress_nginx: bool,
    /// Target MKE 4k version.
    #[arg(long, value_name = "VERSION", default_value = convert::mke4::DEFAULT_VERSION)]
    pub mke4_version: String,
}

impl TargetArgs {
    /// The conversion options for these flags and `external_address`; the CA files read and
    /// checked (a file that is not PEM certificates is named with its problem).
    pub fn options(&self, external_address: Option<&str>) -> Result<Options, CliError> {
        let (image_registry_ca, chart_registry_ca) = self.ca_data()?;
        Ok(Options {
            external_address: external_address.map(str::to_string),
            image_registry: self.image_registry.clone(),
            chart_registry: self.chart_registry.clone(),
            image_registry_ca,
            chart_registry_ca,
            airgapped: self.mke3_airgapped,
            gateway_http_node_port: self.gateway_http_node_port,
            gateway_https_node_port: self.gateway_https_node_port,
            remove_ingress_nginx: self.remove_ingress_nginx,
            version: self.mke4_version.clone(),
            ..Options::default()
        })
    }

    /// The registries' CA files' contents, each checked to be PEM certificates.
    pub fn ca_data(&self) -> Result<(Option<String>, Option<String>), CliError> {
        let read = |p: &Option<PathBuf>| -> Result<Option<String>, CliError> {
            let Some(p) = p else { return Ok(None) };
            let text = fsio::read_text_input(p)?;
            match convert::options::pem_certificate_problem(&text) {
                None => Ok(Some(text)),
                Some(why) => Err(CliError::Input {
                    path: p.clone(),
                    problem: why,
                }),
            }
        };
        Ok((
            read(&self.image_registry_ca_file)?,
            read(&self.chart_registry_ca_file)?,
        ))
    }
}

impl InitArgs {
    fn options(&self) -> Result<Options, CliError> {
        Ok(Options {
            // An offline conversion of an old export (UCP 3.x has no calico_kdd key) is useful;
            // the missing key is reported as a warning. An explicit `false` still blocks.
            allow_missing_calico_kdd: true,
            ..self.target.options(self.external_address.as_deref())?
        })
    }
}

/// Maps a conversion error to the CLI's error, naming the input file.
pub(crate) fn conversion_error(path: &Path, e: &convert::Error) -> CliError {
    match e {
        convert::Error::Parse(p) => CliError::InvalidContent {
            path: path.to_path_buf(),
            message: p.to_string(),
        },
        convert::Error::InvalidOption(_) | convert::Error::UnsupportedVersion { .. } => {
            CliError::Usage(e.to_string())
        }
        convert::Error::Blocked { .. } | convert::Error::RepeatedFlags { .. } => {
            CliError::Blocked(e.to_string())
        }
    }
}

pub fn run(args: &InitArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let options = args.options()?;
    let Some(path) = &args.mke3_config else {
        let config =
            convert::default_with_options(&options).map_err(|e| CliError::Usage(e.to_string()))?;
        let yaml = yaml_of(&config)?;
        return emit(args, out, &yaml, None);
    };
    let text = fsio::read_text_input(path)?;
    match convert::convert(&text, &options) {
        Ok(conversion) => {
            let yaml = yaml_of(&conversion.config)?;
            emit(args, out, &yaml, Some(&conversion))
        }
        Err(e) => {
            // A refused conversion still has a full report: show it, write nothing.
            if let Some(conversion) = e.conversion() {
                match args.output {
                    Format::Text => out.info(&text_report(conversion)),
                    Format::Json => {
                        out.result(&json_report(conversion, None, Some(&e.to_string())))
                    }
                }
            }
            Err(conversion_error(path, &e))
        }
    }
}

fn yaml_of(config: &convert::MkeConfig) -> Result<String, CliError> {
    convert::to_yaml(config)
        .map_err(|e| CliError::Internal(format!("cannot render the MKE 4 YAML: {e}")))
}

fn emit(
    args: &InitArgs,
    out: &mut Output<'_>,
    yaml: &str,
    conversion: Option<&Conversion>,
) -> Result<u8, CliError> {
    if let Some(dest) = &args.config_out {
        fsio::write_atomic(dest, yaml.as_bytes())?;
    }
    match args.output {
        Format::Text => {
            if args.config_out.is_none() {
                out.result(yaml);
            }
            if let Some(c) = conversion {
                out.info(&text_report(c));
            }
            if let Some(dest) = &args.config_out {
                out.info(&format!(
                    "MKE 4 configuration written to {}\n",
                    dest.display()
                ));
            }
        }
        Format::Json => {
            let inline = args.config_out.is_none().then_some(yaml);
            match conversion {
                Some(c) => out.result(&json_report(c, inline, None)),
                None => out.result(&format!("{}\n", serde_json::json!({ "yaml": inline }))),
            }
        }
    }
    Ok(crate::exit::code(crate::exit::Ending::Done))
}

/// The Configuration file section, the flags not converted, every key not converted and the
/// warnings, for standard error.
pub(crate) fn text_report(c: &Conversion) -> String {
    let mut s = convert::report::configuration_summary(c);
    // Every key of the file is in one of these counts; `ferry check mke3-config` and `-o json`
    // list them one by one.
    s.push_str(&format!(
        "\nKeys of the MKE 3 file: {} converted, {} not supported, {} skipped (default, unset or switched off), {} unknown. `ferry check mke3-config` lists every one.\n",
        c.count(convert::Status::Converted),
        c.count(convert::Status::NotSupported),
        c.count(convert::Status::Skipped),
        c.count(convert::Status::Unknown),
    ));
    let rest = convert::report::not_converted(c);
    if !rest.is_empty() {
        s.push_str("\nSettings not converted\n---------------\n");
        s.push_str(&rest);
    }
    if !c.blockers.is_empty() {
        s.push_str("\nBlocking conditions\n---------------\n");
        for b in &c.blockers {
            s.push_str(&format!(
                "unsupported configuration for mke4 upgrade: {b}\n"
            ));
        }
    }
    let warnings: Vec<_> = c
        .notes
        .iter()
        .filter(|n| n.kind == convert::NoteKind::Warning)
        .collect();
    if !warnings.is_empty() {
        s.push_str("\nWarnings\n---------------\n");
        for n in warnings {
            s.push_str(&format!("{}: {}\n", n.key, n.message));
        }
    }
    s
}

/// The JSON report: counts, notes, flags, blockers, the summary text and (when it is not
/// written to a file) the YAML.
pub(crate) fn json_report(c: &Conversion, yaml: Option<&str>, error: Option<&str>) -> String {
    let count = |s| c.count(s);
    let v = serde_json::json!({
        "error": error,
        "counts": {
            "converted": count(convert::Status::Converted),
            "notSupported": count(convert::Status::NotSupported),
            "skipped": count(convert::Status::Skipped),
            "unknown": count(convert::Status::Unknown),
            "flagsNotConverted": c.flags_not_converted().count(),
        },
        "blockers": c.blockers,
        "keys": c.keys,
        "notes": c.notes,
        "flags": c.flags,
        "metallbPools": c.metallb_pools,
        "summary": convert::report::configuration_summary(c),
        "yaml": yaml,
    });
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}
