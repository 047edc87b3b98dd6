//! `tokportal`: the TokPortal API from the command line. The whole CLI lives
//! in the library's `cli` module; this is its thin `main`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tokportal::cli::run(std::env::args_os()).await
}
