//! The `ferry` binary: everything lives in the `ferry_cli` library.

fn main() -> std::process::ExitCode {
    ferry_cli::main_with_args(std::env::args_os())
}
