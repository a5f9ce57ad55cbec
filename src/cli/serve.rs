//! `trainsim serve`: starts the local web explorer ([`crate::serve`]).

use std::io::Write as _;

pub(super) const HELP: &str = "Examples:
  trainsim serve                  http://127.0.0.1:8765/
  trainsim serve --port 0         any free port (the URL is printed)

Binds 127.0.0.1 only (this machine). The page picks a shipped scenario or takes a pasted or
uploaded one, changes the plan (TP/PP/DP/EP, micro-batch, recomputation, ZeRO, schedule)
and the cluster with form controls and shows the simulated step time, MFU, memory fit,
breakdown and timeline; it runs sweeps and plan searches in the background with live
progress, offers results.json, CSV and report.html downloads, and compares two runs side
by side. Everything it serves is compiled into the binary. Stop it with Ctrl-C.";

/// Arguments of `trainsim serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
}

pub(super) fn serve(a: &ServeArgs) -> anyhow::Result<i32> {
    crate::serve::serve(a.port, |url| {
        println!("trainsim explorer: {url}   (127.0.0.1 only; Ctrl-C to stop)");
        let _ = std::io::stdout().flush();
    })?;
    Ok(0)
}
