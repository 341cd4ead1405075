//! `keyrotor`: the operator's command. Parsing and exit codes only; the commands are in the
//! library target.

use clap::Parser;
use keyrotor::{run, Cli, EXIT_ERROR};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {}", keyrotor::one_line(&err));
            std::process::exit(EXIT_ERROR);
        }
    }
}
