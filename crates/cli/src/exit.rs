//! Documented exit codes. They are part of ferry's interface: scripts rely on them.

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
