//! `trainsim schema`, `trainsim completions SHELL`, and the scenario file that
//! `search --emit-best` writes.

use crate::parallel::{ParallelPlan, Recompute};
use crate::scenario::Scenario;
use std::path::Path;

pub(super) const SCHEMA_HELP: &str = "Examples:
  trainsim schema --out trainsim.schema.json
      then, with the Even Better TOML (taplo) editor extension, put
      #:schema ./trainsim.schema.json
      at the top of a scenario file for completion and checks of every field

The schema is derived from the loader (it accepts exactly the keys the loader accepts) with
each key's meaning, unit, default and allowed values from docs/scenario.md.";

pub(super) const COMPLETIONS_HELP: &str = "Examples:
  trainsim completions bash > ~/.local/share/bash-completion/completions/trainsim
  trainsim completions zsh > ~/.zfunc/_trainsim
  trainsim completions fish > ~/.config/fish/completions/trainsim.fish";

pub(super) fn schema(out: Option<&Path>) -> anyhow::Result<i32> {
    let mut text = serde_json::to_string_pretty(&crate::scenario::fields::schema())?;
    text.push('\n');
    match out {
        Some(p) => {
            crate::report::write_atomic(p, text.as_bytes())?;
            println!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(0)
}

pub(super) fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    use clap::CommandFactory;
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "trainsim", &mut std::io::stdout());
    Ok(0)
}

/// The scenario `sc` (loaded from `from`) with its `[parallel]` section replaced by `plan`,
/// as the text of a file to be written at `to`: relative paths inside it are rewritten so
/// they still point at the same files, and it is checked to load.
pub(super) fn best_scenario(sc: &Scenario, plan: &ParallelPlan, from: &Path, to: &Path) -> anyhow::Result<String> {
    let mut table: toml::Table = toml::from_str(&sc.source)?;
    let mut par = toml::Table::new();
    let int = |v: u32| toml::Value::Integer(v as i64);
    par.insert("tp".into(), int(plan.tp));
    par.insert("pp".into(), int(plan.pp));
    par.insert("dp".into(), int(plan.dp));
    par.insert("sequence_parallel".into(), toml::Value::Boolean(plan.sequence_parallel));
    if plan.pp > 1 {
        par.insert("schedule".into(), toml::Value::String(plan.schedule.name().into()));
    }
    par.insert("virtual_stages".into(), int(plan.virtual_stages));
    par.insert("micro_batch_size".into(), int(plan.micro_batch_size));
    par.insert("zero_stage".into(), int(plan.zero_stage));
    par.insert(
        "recompute".into(),
        toml::Value::String(Recompute::NAMES[plan.recompute as usize].into()),
    );
    if plan.cp > 1 {
        par.insert("cp".into(), int(plan.cp));
    }
    if plan.ep > 1 {
        par.insert("ep".into(), int(plan.ep));
        par.insert("expert_tp".into(), int(plan.expert_tp));
    }
    if plan.pipeline_split_embedding_and_loss {
        par.insert("pipeline_split_embedding_and_loss".into(), toml::Value::Boolean(true));
    }
    let list = |v: &[u32]| toml::Value::Array(v.iter().map(|&x| int(x)).collect());
    if let Some(layers) = &plan.layer_split.stages {
        par.insert("stage_layers".into(), list(layers));
    }
    if let Some(batches) = &plan.replica_micro_batches {
        par.insert("replica_micro_batches".into(), list(batches));
    }
    // what the search decides, written above or left to its default when absent there
    const DECIDED: [&str; 11] = [
        "schedule",
        "cp",
        "ep",
        "expert_tp",
        "pipeline_split_embedding_and_loss",
        "stage_layers",
        "first_stage_layers",
        "last_stage_layers",
        "replica_micro_batches",
        "virtual_stages",
        "sequence_parallel",
    ];
    // keep the scenario's own knobs the search does not vary (overlap flags, bucket size)
    if let Some(old) = table.get("parallel").and_then(|v| v.as_table()) {
        for (k, v) in old.iter().filter(|(k, _)| !DECIDED.contains(&k.as_str())) {
            par.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    table.insert("parallel".into(), toml::Value::Table(par));
    // relative file references are relative to the scenario file: keep them pointing there
    let from_dir = from.parent().unwrap_or(Path::new(""));
    let to_dir = to.parent().unwrap_or(Path::new(""));
    for (section, key) in [("model", "hf_config"), ("moe", "loads_csv")] {
        let Some(v) = table
            .get_mut(section)
            .and_then(|s| s.as_table_mut())
            .and_then(|s| s.get_mut(key))
        else {
            continue;
        };
        if let Some(rel) = v.as_str().filter(|r| Path::new(r).is_relative()) {
            if from_dir != to_dir {
                let abs = std::path::absolute(from_dir.join(rel))?;
                *v = toml::Value::String(abs.display().to_string());
            }
        }
    }
    let body = toml::to_string(&table)?;
    let text = format!(
        "# The best plan of `trainsim search {}` (trainsim {}), as a runnable scenario:\n#   trainsim run {}\n{body}",
        from.display(),
        crate::report::VERSION,
        to.display()
    );
    Scenario::from_source(&text, to).map_err(|e| anyhow::anyhow!("the best plan's scenario does not load: {e}"))?;
    Ok(text)
}
