//! `trainsim serve`: a local web explorer. One page (embedded in the binary: no node, no
//! CDN, works offline) to pick a shipped scenario or paste/upload one, change the plan and
//! cluster with form controls and see the simulated step time, MFU, memory fit, the
//! breakdown and the timeline within a second; sweeps and plan searches in the background
//! with live progress (server-sent events); downloads; two runs side by side.
//!
//! Simulations run on tokio's blocking pool (`spawn_blocking`), never on the async
//! workers, at most [`AppState::sims`] at a time; background jobs one at a time. A bad
//! scenario is an HTTP 400 carrying the same located message the command line prints.
//! Request bodies are limited to [`BODY_LIMIT`]. The server binds 127.0.0.1 only.

pub mod api;
mod assets;

use crate::scenario::{Override, Scenario};
use crate::simulation::RunResult;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Semaphore};

/// Largest request body accepted, bytes.
pub const BODY_LIMIT: usize = 1 << 20;
/// Runs kept for downloads and comparison (oldest dropped first).
pub const KEPT_RUNS: usize = 64;
/// Points a sweep from the explorer may have at most.
pub const MAX_SWEEP_POINTS: usize = 2048;
/// Name under which a scenario typed in the explorer is reported (relative paths inside
/// it, e.g. `model.hf_config`, resolve from the folder the server was started in).
pub const EDITOR_FILE: &str = "scenario.toml";

/// The one place the explorer runs a simulation: the library's run pipeline.
pub fn simulate(s: &Scenario) -> Result<RunResult, String> {
    crate::runner::simulate(s, &crate::runner::RunOptions::default())
        .map(|(r, _, _)| r)
        .map_err(|e| e.to_string())
}

/// A finished run kept for downloads and comparison.
pub struct StoredRun {
    /// The result.
    pub result: RunResult,
    /// The scenario it came from.
    pub record: crate::report::ScenarioRecord,
}

/// State of a background job.
#[derive(Clone, Debug)]
pub enum JobState {
    /// Waiting for the previous job.
    Queued,
    /// Points (or phases) done out of a total.
    Running {
        /// Done.
        done: usize,
        /// Total.
        total: usize,
    },
    /// Finished: what the page shows.
    Done(serde_json::Value),
    /// Failed: why.
    Failed(String),
}

/// A background sweep or search.
pub struct Job {
    /// "sweep" or "search".
    pub kind: &'static str,
    /// Its state, watched by the event streams.
    pub state: watch::Sender<JobState>,
    /// Folder of its files (CSV, charts).
    pub dir: PathBuf,
}

/// Everything the handlers share.
pub struct AppState {
    /// Simulations that may run at once.
    pub sims: Arc<Semaphore>,
    /// Background jobs that may run at once.
    pub jobs_gate: Arc<Semaphore>,
    /// Recent runs by id.
    pub runs: Mutex<VecDeque<(u64, Arc<StoredRun>)>>,
    /// Jobs by id.
    pub jobs: Mutex<HashMap<u64, Arc<Job>>>,
    /// Next id of a run or job.
    pub next_id: AtomicU64,
    /// Folder for job files.
    pub work_dir: PathBuf,
}

impl AppState {
    /// Fresh state; `work_dir` receives the jobs' files.
    pub fn new(work_dir: PathBuf) -> AppState {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        AppState {
            sims: Arc::new(Semaphore::new(cores.clamp(1, 8))),
            jobs_gate: Arc::new(Semaphore::new(1)),
            runs: Mutex::new(VecDeque::new()),
            jobs: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            work_dir,
        }
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn keep_run(&self, run: StoredRun) -> u64 {
        let id = self.id();
        let mut runs = self.runs.lock().expect("runs lock");
        runs.push_back((id, Arc::new(run)));
        while runs.len() > KEPT_RUNS {
            runs.pop_front();
        }
        id
    }

    fn run(&self, id: u64) -> Option<Arc<StoredRun>> {
        let runs = self.runs.lock().expect("runs lock");
        runs.iter().find(|(i, _)| *i == id).map(|(_, r)| r.clone())
    }

    fn job(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().expect("jobs lock").get(&id).cloned()
    }
}

/// Loads scenario text from the explorer with its form overrides.
pub fn load(text: &str, set: &[Override]) -> Result<Scenario, crate::scenario::ScenarioError> {
    Scenario::from_source_with(text, Path::new(EDITOR_FILE), set)
}

/// Binds 127.0.0.1:`port` (0: any free port), calls `ready` with the URL, and serves until
/// the process ends.
pub fn serve(port: u16, ready: impl FnOnce(&str)) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let addr = listener.local_addr()?;
        let work_dir = std::env::temp_dir().join(format!("trainsim-serve-{}-{}", std::process::id(), addr.port()));
        let state = Arc::new(AppState::new(work_dir));
        ready(&format!("http://{addr}/"));
        axum::serve(listener, api::router(state)).await?;
        Ok(())
    })
}
