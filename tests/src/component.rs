//! `millrace agent` and `millrace sink` processes for tests: a configuration file written into a
//! test directory, the process started, killed, restarted and stopped like an operator would.

use crate::{millrace_bin, LoggedProcess};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running (or stopped) `millrace <kind> --config FILE`.
pub struct Component {
    kind: &'static str,
    config: PathBuf,
    process: LoggedProcess,
    /// Set in its environment at every start (secrets for `${VAR}` in its configuration).
    env: Vec<(String, String)>,
}

impl Component {
    /// Writes `toml` to `<dir>/<name>.toml` and starts `millrace <kind>` with it, logging to
    /// `<dir>/<name>.log`.
    pub fn start(kind: &'static str, dir: &Path, name: &str, toml: &str) -> anyhow::Result<Component> {
        Component::start_with_env(kind, dir, name, toml, &[])
    }

    /// [`Component::start`] with `env` added to its environment (at every start).
    pub fn start_with_env(
        kind: &'static str,
        dir: &Path,
        name: &str,
        toml: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Component> {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml)?;
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let process = LoggedProcess::new(dir.join(format!("{name}.log")));
        let mut component = Component { kind, config, process, env };
        component.spawn()?;
        Ok(component)
    }

    /// Starts it again with the same configuration.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(millrace_bin());
        command.args([self.kind, "--config"]).arg(&self.config).env("MILLRACE_LOG", "info");
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.process.spawn(command)
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// SIGTERM; fails unless it exits cleanly within `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let status = self.process.terminate(timeout)?;
        anyhow::ensure!(status.success(), "{} exited with {status}; log:\n{}", self.kind, self.log());
        Ok(())
    }

    /// The process, for waiting on its log lines or signalling it.
    pub fn process(&mut self) -> &mut LoggedProcess {
        &mut self.process
    }

    /// Everything it logged, across restarts.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}
