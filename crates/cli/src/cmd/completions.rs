//! `ferry completions bash|zsh|fish`: the shell completion script, made by clap from the same
//! argument definitions the commands parse with, so it never falls out of date.

use clap::CommandFactory as _;

use crate::{Cli, CliError, Output, exit};

/// A shell ferry writes completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Install, for example: ferry completions bash > /etc/bash_completion.d/ferry, \
ferry completions zsh > \"${fpath[1]}/_ferry\", \
ferry completions fish > ~/.config/fish/completions/ferry.fish")]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut buf);
    out.result(&String::from_utf8_lossy(&buf));
    Ok(exit::code(exit::Ending::Done))
}
