//! Turning an argv into the one string that SSH carries.
//!
//! # Why every element is quoted
//!
//! The SSH protocol has no argv: an `exec` request carries a single string, and sshd runs it as
//! `<login shell> -c <string>` on the host. Whatever we send is therefore parsed again by a
//! shell, which splits words, expands `$VAR`, `$(...)`, backticks, globs and `~`, and treats
//! `;`, `|`, `&`, `>` and newlines as syntax. A value such as a file name, a label or a token that
//! contains any of these would change the command, or run another one.
//!
//! So ferry never builds command strings from data. A [`Cmd`](ferry_core::Cmd) is an argv, and
//! this module quotes **every** element, including the program, with POSIX single quotes: inside
//! `'...'` a POSIX shell gives no character a special meaning, and the only character that cannot
//! appear is `'` itself, which is written as `'\''` (close the quote, an escaped quote, reopen).
//! The remote shell then hands the program exactly the bytes we were given. Words made only of
//! characters that are never special (`[A-Za-z0-9_./:=,@%+-]`) are left bare for readability;
//! the empty string becomes `''` so that it stays an argument.
//!
//! Limits, checked or documented:
//! - a NUL byte cannot be part of an argv element on Unix, so it is refused, not passed;
//! - the login shell of the remote user must be a POSIX shell (sh, bash, dash, zsh, ksh), as for
//!   every SSH-based tool (k0sctl, Ansible): csh and fish do not read `'\''` the same way.

/// Quotes one argv element for a POSIX shell. See the module documentation.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=,@%+-".contains(&b))
    {
        return word.to_string();
    }
    let mut s = String::with_capacity(word.len() + 2);
    s.push('\'');
    for c in word.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// An argv element contains a NUL byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {index} contains a NUL byte, which no program argument can hold")]
pub struct NulByte {
    /// Index in the full argv (0 is the program).
    pub index: usize,
}

/// Joins an argv into the command string for SSH, quoting every element.
pub fn command_line<S: AsRef<str>>(argv: &[S]) -> Result<String, NulByte> {
    let mut line = String::new();
    for (index, w) in argv.iter().enumerate() {
        let w = w.as_ref();
        if w.contains('\0') {
            return Err(NulByte { index });
        }
        if index > 0 {
            line.push(' ');
        }
        line.push_str(&quote(w));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `sh -c 'printf "[%s]" "$@"' sh <line>` locally: what a POSIX shell makes of the line.
    fn shell_words(line: &str) -> String {
        let script = format!("printf '[%s]' {line}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn safe_words_stay_bare() {
        assert_eq!(quote("k0s"), "k0s");
        assert_eq!(quote("/var/lib/k0s"), "/var/lib/k0s");
        assert_eq!(quote("--data-dir=/x"), "--data-dir=/x");
        assert_eq!(quote("a@b:c,d%e+f"), "a@b:c,d%e+f");
    }

    #[test]
    fn everything_else_is_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("two words"), "'two words'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("~"), "'~'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote("a\nb"), "'a\nb'");
    }

    #[test]
    fn a_posix_shell_reads_back_exactly_the_argv() {
        let nasty = [
            "plain",
            "",
            "two  words",
            "it's",
            "''",
            "'\\''",
            "\"dq\"",
            "$HOME",
            "${PATH}",
            "$(touch /tmp/ferry-quote-pwned)",
            "`touch /tmp/ferry-quote-pwned`",
            "*",
            "?",
            "[a]",
            "~",
            "~root",
            "a;b|c&d>e<f",
            "-n",
            "--",
            "line1\nline2",
            "tab\tsep",
            "back\\slash\\",
            "#comment",
            "!bang",
            "{a,b}",
            "ünïcødé ✓",
            "%s%%",
        ];
        for w in nasty {
            assert_eq!(shell_words(&quote(w)), format!("[{w}]"), "word {w:?}");
        }
        let line = command_line(&nasty).unwrap();
        let want: String = nasty.iter().map(|w| format!("[{w}]")).collect();
        assert_eq!(shell_words(&line), want);
        assert!(!std::path::Path::new("/tmp/ferry-quote-pwned").exists());
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(
            command_line(&["echo", "ok", "a\0b"]),
            Err(NulByte { index: 2 })
        );
    }
}
