//! The `boxoffice` binary: parse the command line, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = boxoffice::Cli::parse();
    match boxoffice::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("boxoffice: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
