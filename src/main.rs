//! The `patron` binary: parse flags, start logging, load settings, dispatch.

use std::process::ExitCode;

use patron::{cli::CliError, jobs::command::supervisor};

fn main() -> ExitCode {
    // `patron __supervise …` is the first process of a `command` job (see its module); it
    // runs before anything else: no runtime, no threads.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == supervisor::ARG) {
        let code = supervisor::main(args);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if let Ok(me) = std::env::current_exe() {
        patron::jobs::command::use_supervisor(me);
    }
    let cli = patron::cli::parse_args();
    // reqwest (rustls without a provider) and sqlx (ring) share one crypto provider; it must
    // be chosen once, before the first TLS connection (DEPENDENCIES.md).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match patron::cli::main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(code)) => ExitCode::from(code),
        Err(CliError::Other(err)) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            patron::cli::print_error(patron::cli::error_text(&err));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
