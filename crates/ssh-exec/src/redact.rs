//! Keeping secrets out of log lines and error messages.
//!
//! A [`Cmd`]'s `Display` and `Debug` already print `<redacted>` for its secret arguments. Text that
//! comes back from the host (stderr, ssh messages) may echo a secret too, for example a program
//! that prints its arguments in an error. Every such text is passed through [`scrub`] before it
//! reaches a log line or an error.

use ferry_core::Cmd;

/// The marker that replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Replaces every occurrence of the secret arguments of `cmd` (and of their quoted forms) in
/// `text` with `<redacted>`.
pub fn scrub(cmd: &Cmd, text: &str) -> String {
    let mut out = text.to_string();
    let mut secrets: Vec<String> = Vec::new();
    for &i in &cmd.secret_args {
        if let Some(s) = cmd.args.get(i) {
            if !s.is_empty() {
                secrets.push(s.clone());
                let q = crate::quote::quote(s);
                if q != *s {
                    secrets.push(q);
                }
            }
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(&s, REDACTED);
    }
    out
}

/// The first line of `bytes` as text, scrubbed and cut to 200 characters, for a log line.
pub fn first_line(cmd: &Cmd, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line: String = line.chars().take(200).collect();
    scrub(cmd, line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere() {
        let c = Cmd::new("k0s")
            .arg("token")
            .secret_arg("s3cr3t-t0ken")
            .secret_arg("it's secret");
        assert_eq!(
            scrub(
                &c,
                "bad token s3cr3t-t0ken; again s3cr3t-t0ken and 'it'\\''s secret'"
            ),
            "bad token <redacted>; again <redacted> and <redacted>"
        );
        assert_eq!(scrub(&c, "it's secret"), "<redacted>");
        assert_eq!(
            first_line(&c, b"\n\nerror: s3cr3t-t0ken\nmore"),
            "error: <redacted>"
        );
    }

    #[test]
    fn non_secret_arguments_stay() {
        let c = Cmd::new("echo").arg("token").secret_arg("");
        assert_eq!(scrub(&c, "token"), "token");
    }
}
