use clap::Parser;
use peephole::cli::{exit_code, Cli};

fn main() {
    // llama.cpp's OpenMP threads must wait passively (5x faster decoding on
    // a busy machine); libgomp reads this only at start-up.
    peephole::propose::llm::ensure_passive_openmp();
    let cli = Cli::parse();
    std::process::exit(exit_code(&cli));
}
