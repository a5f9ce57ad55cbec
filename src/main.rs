//! The `trainsim` binary: parse arguments, run, map errors to a message and exit code.

fn main() {
    // `trainsim ... | head` closes the pipe early: leave quietly, as a shell tool should,
    // instead of reporting a panic from the standard output macros
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141); // 128 + SIGPIPE, what a shell reports for a closed pipe
        }
        default_hook(info);
    }));
    std::process::exit(trainsim::cli::main_with_args(std::env::args_os()));
}
