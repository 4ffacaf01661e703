//! Documented exit codes. They are part of ferry's interface: scripts rely on them. Commands
//! say how they ended ([`Ending`]); [`code`] is the one mapping to numbers.

/// Everything went as asked.
pub const OK: u8 = 0;
/// An unexpected error that is not the input's fault (for example an output file that cannot be
/// written). Nothing was changed on any cluster.
pub const FAILED: u8 = 1;
/// Usage error or invalid input: a bad flag, a missing, unreadable or malformed input file.
/// Nothing was changed.
pub const USAGE: u8 = 2;
/// Checks failed or a blocking condition was found (for example Calico not on KDD); nothing was
/// changed and no output file was written.
pub const CHECKS_FAILED: u8 = 3;
/// A run failed and everything it had done was rolled back cleanly.
pub const ROLLED_BACK: u8 = 4;
/// A run failed and its rollback is incomplete: the journal says what is left.
pub const ROLLBACK_INCOMPLETE: u8 = 5;
/// Interrupted twice: ferry stopped at once and left the journal for `ferry rollback`.
pub const INTERRUPTED: u8 = 130;

/// What a command came to. [`code`] is the one place that turns it into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything went as asked (a dry run whose checks passed included).
    Done,
    /// An unexpected error that is not the input's fault; nothing was changed.
    Failed,
    /// A bad flag or invalid input; nothing was changed.
    InvalidInput,
    /// Checks failed or a blocking condition was found; nothing was changed.
    ChecksFailed,
    /// The run failed and was rolled back cleanly.
    RolledBack,
    /// The run failed and its rollback is incomplete.
    RollbackIncomplete,
    /// Interrupted twice; the journal is kept.
    Interrupted,
}

/// The documented exit code of `ending`.
pub fn code(ending: Ending) -> u8 {
    match ending {
        Ending::Done => OK,
        Ending::Failed => FAILED,
        Ending::InvalidInput => USAGE,
        Ending::ChecksFailed => CHECKS_FAILED,
        Ending::RolledBack => ROLLED_BACK,
        Ending::RollbackIncomplete => ROLLBACK_INCOMPLETE,
        Ending::Interrupted => INTERRUPTED,
    }
}

impl Ending {
    /// How a finished run (or `ferry rollback`) ended.
    pub fn of_finish<R>(f: &ferry_core::run::Finish<R>) -> Self {
        use ferry_core::run::Finish;
        match f {
            Finish::DryRun { checks, .. } if !checks.passed() => Ending::ChecksFailed,
            Finish::DryRun { .. } | Finish::Completed { .. } => Ending::Done,
            Finish::RolledBack { .. } => Ending::RolledBack,
            Finish::RollbackIncomplete { .. } => Ending::RollbackIncomplete,
            Finish::Interrupted => Ending::Interrupted,
        }
    }

    /// How a run that could not start or go on ended: failed checks, the operator's input, or
    /// anything else (never blamed on the input unless it is).
    pub fn of_run_error<E: FlowError>(e: &ferry_core::run::RunError<E>) -> Self {
        use ferry_core::run::RunError;
        match e {
            RunError::Checks(_) => Ending::ChecksFailed,
            RunError::NoHosts | RunError::NotConfirmed(_) => Ending::InvalidInput,
            RunError::Flow(f) if f.is_input() => Ending::InvalidInput,
            _ => Ending::Failed,
        }
    }
}

/// A flow's error: whether the operator's input is at fault (exit 2) rather than the cluster.
pub trait FlowError: std::error::Error + 'static {
    fn is_input(&self) -> bool;
}

impl FlowError for ferry_flow_mke::MkeError {
    fn is_input(&self) -> bool {
        ferry_flow_mke::MkeError::is_input(self)
    }
}

impl FlowError for ferry_flow_node_os::NodeOsError {
    fn is_input(&self) -> bool {
        matches!(self, ferry_flow_node_os::NodeOsError::Refused(_))
    }
}

impl FlowError for ferry_flow_cloud_provider::CloudProviderError {
    fn is_input(&self) -> bool {
        matches!(
            self,
            ferry_flow_cloud_provider::CloudProviderError::Refused(_)
        )
    }
}

impl FlowError for ferry_flow_k0s_upgrade::K0sUpgradeError {
    fn is_input(&self) -> bool {
        ferry_flow_k0s_upgrade::K0sUpgradeError::is_input(self)
    }
}
