use clap::Parser;
use peephole::cli::{run, Cli};

fn main() {
    // llama.cpp's OpenMP threads must wait passively (5x faster decoding on
    // a busy machine); libgomp reads this only at start-up.
    peephole::propose::llm::ensure_passive_openmp();
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
