//! The `trainsim` binary: parse arguments, run, map errors to a message and exit code.

fn main() {
    std::process::exit(trainsim::cli::main_with_args(std::env::args_os()));
}
