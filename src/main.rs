use clap::Parser;
use peephole::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("peephole: error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
