use std::process::ExitCode;

fn main() -> ExitCode {
    gitlab_license_server::cli::run()
}
