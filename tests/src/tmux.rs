//! A terminal program driven through tmux: started in a detached session of a private tmux server
//! (its own socket in a temporary directory, so no user session is touched), read with
//! `capture-pane`, typed into with `send-keys`. How the terminal UI is tested as a user sees it.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One program running in a tmux pane.
pub struct TmuxPane {
    socket: PathBuf,
    /// Where the program's exit status is written when it ends.
    status_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TmuxPane {
    /// Starts `program args…` in a `width`×`height` pane. The pane stays after the program exits
    /// (`remain-on-exit`), so its last screen and exit status can be read.
    pub fn start(program: &str, args: &[&str], width: u16, height: u16) -> anyhow::Result<TmuxPane> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("tmux.sock");
        let status_file = dir.path().join("exit-status");
        // A shell runs the program and writes its exit status: tmux reaps a pane's process only
        // when its own event loop gets to it (seen to take over 5 s), so its status is not a
        // reliable way to learn that the program ended.
        let script = format!("\"$0\" \"$@\"; echo $? > '{}'", status_file.display());
        let pane = TmuxPane { socket, status_file, _dir: dir };
        let (w, h) = (width.to_string(), height.to_string());
        let mut command =
            vec!["new-session", "-d", "-s", "main", "-x", &w, "-y", &h, "--", "sh", "-c", &script, program];
        command.extend_from_slice(args);
        pane.tmux(&command).context("starting the program in tmux (is tmux installed?)")?;
        // Keep the pane once the program ends, to see how it left the screen.
        pane.tmux(&["set-option", "-t", "main", "remain-on-exit", "on"])?;
        Ok(pane)
    }

    fn tmux(&self, args: &[&str]) -> anyhow::Result<Output> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .env("TERM", "xterm-256color")
            .output()
            .with_context(|| format!("running tmux {args:?}"))?;
        if !output.status.success() {
            bail!("tmux {args:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(output)
    }

    /// The pane's text as shown now.
    pub fn screen(&self) -> anyhow::Result<String> {
        let output = self.tmux(&["capture-pane", "-p", "-t", "main"])?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The pane's text with its colours as SGR escape sequences (`capture-pane -e`), to check
    /// what is drawn red.
    pub fn screen_with_colors(&self) -> anyhow::Result<String> {
        let output = self.tmux(&["capture-pane", "-p", "-e", "-t", "main"])?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Types keys (tmux key names: `Enter`, `Escape`, `Down`, `q`, `C-c`; or literal text).
    pub fn send_keys(&self, keys: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args).map(|_| ())
    }

    /// Types a `:` command of `millrace top` (`groups`, `partitions orders`) and Enter.
    pub fn type_command(&self, command: &str) -> anyhow::Result<()> {
        self.send_keys(&[":"])?;
        self.type_text(command)?;
        self.send_keys(&["Enter"])
    }

    /// Types `text` literally (no key-name lookup).
    pub fn type_text(&self, text: &str) -> anyhow::Result<()> {
        self.tmux(&["send-keys", "-t", "main", "-l", text]).map(|_| ())
    }

    /// Waits until the screen satisfies `check`; returns that screen. On timeout the error shows
    /// the last screen.
    pub fn wait_for_screen(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.screen()?;
            if check(&last) {
                return Ok(last);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("timed out after {timeout:?} waiting for {what}; the screen was:\n{last}")
    }

    /// The program's exit status once it has ended (128 + the signal if a signal ended it), None
    /// while it runs.
    pub fn exit_status(&self) -> anyhow::Result<Option<i32>> {
        match std::fs::read_to_string(&self.status_file) {
            // Complete once the shell's line is: the file may be read between creation and write.
            Ok(text) if text.ends_with('\n') => {
                Ok(Some(text.trim().parse().with_context(|| format!("exit status {text:?}"))?))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.status_file.display())),
        }
    }
}

impl Drop for TmuxPane {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

/// The line of `screen` that contains `needle` (a table row, with its `│` borders).
pub fn row<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}
