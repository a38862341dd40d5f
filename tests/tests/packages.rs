//! The Debian package (`scripts/package-deb.sh`), installed on this machine as an operator would:
//! `dpkg -i` creates the `millrace` user and its state directories, puts the binary, the
//! hardened systemd units (checked with `systemd-analyze verify`) and the default configurations
//! in place; the broker unit's own command line, run as that user (systemd itself is not running
//! here), serves clients and writes only under /var/lib/millrace; `dpkg --purge` takes it all
//! away again. Installing needs root (as in CI).

use anyhow::Context;
use millrace_tests::disks::skip_or_fail;
use millrace_tests::{free_port, http_status_at, millrace, millrace_bin, run, wait_for, Drained};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The `ExecStart=` command line of an installed unit, split on spaces (the units quote nothing).
fn exec_start(unit: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}"))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .ok_or_else(|| anyhow::anyhow!("{unit} has no ExecStart"))?;
    Ok(line.split_whitespace().map(str::to_string).collect())
}

fn purge() -> anyhow::Result<()> {
    run("dpkg", &["--purge", "millrace"], None, T)?;
    Ok(())
}

#[test]
fn the_deb_installs_runs_as_its_own_user_and_purges_cleanly() -> anyhow::Result<()> {
    if !is_root() {
        return skip_or_fail("install a .deb", "not running as root").map(|_: Option<()>| ());
    }
    let scratch = tempfile::Builder::new().prefix("millrace-deb-").tempdir()?;
    let script = millrace_tests::workspace_root().join("scripts").join("package-deb.sh");
    let bin = millrace_bin().display().to_string();
    let out_dir = scratch.path().display().to_string();
    let built = run(&script.display().to_string(), &["--binary", &bin, "--out", &out_dir, "--fast"], None, T)?;
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_string();
    anyhow::ensure!(Path::new(&deb).is_file(), "no package at {deb}");
    let control = String::from_utf8_lossy(&run("dpkg-deb", &["--field", &deb], None, T)?.stdout).into_owned();
    assert!(control.contains("Package: millrace") && control.contains("libssl"), "{control}");

    // A package left by an interrupted run goes first.
    let _ = purge();
    run("dpkg", &["-i", &deb], None, T)?;
    let installed = std::panic::catch_unwind(check_installed);
    let purged = purge();
    match installed {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    purged?;
    assert!(!Path::new("/usr/bin/millrace").exists(), "the binary is gone");
    assert!(!Path::new("/var/lib/millrace").exists(), "purge removes the state");
    assert!(!Path::new("/etc/millrace/broker.toml").exists(), "purge removes the configuration");
    let user = Command::new("getent").args(["passwd", "millrace"]).output()?;
    assert!(!user.status.success(), "purge removes the user");
    Ok(())
}

/// Everything `dpkg -i` should have done, and the broker's unit command line serving.
fn check_installed() -> anyhow::Result<()> {
    let user = Command::new("getent").args(["passwd", "millrace"]).output()?;
    assert!(user.status.success(), "the millrace user exists");
    let uid: u32 = String::from_utf8_lossy(&user.stdout).split(':').nth(2).unwrap_or("").parse()?;
    for dir in ["/var/lib/millrace/broker", "/var/lib/millrace/agent", "/var/lib/millrace/sink"] {
        let meta = std::fs::metadata(dir)?;
        assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o750), "{dir}");
    }
    for config in ["broker", "agent", "sink"] {
        let path = format!("/etc/millrace/{config}.toml");
        let meta = std::fs::metadata(&path)?;
        assert_eq!(meta.mode() & 0o777, 0o640, "{path} is not world-readable (it may hold secrets)");
        let unit = format!("millrace-{config}.service");
        // systemd's own check of the unit file (hardening directives included).
        let verify =
            Command::new("systemd-analyze").args(["verify", &format!("/lib/systemd/system/{unit}")]).output()?;
        let said = String::from_utf8_lossy(&verify.stderr);
        assert!(verify.status.success() && !said.contains(&unit), "systemd-analyze verify {unit}: {said}");
        let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}"))?;
        for hardening in ["User=millrace", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="] {
            assert!(text.contains(hardening), "{unit} lacks {hardening}");
        }
        // Each default configuration is valid as installed.
        let mut check = exec_start(&unit)?;
        check.push("--check-config".into());
        let out = run(&check[0], &check[1..].iter().map(String::as_str).collect::<Vec<_>>(), None, T)?;
        assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"), "{unit}");
    }
    let agent = std::fs::read_to_string("/lib/systemd/system/millrace-agent.service")?;
    assert!(
        agent.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE"),
        "the agent may bind syslog's port, nothing more"
    );

    // The broker's command line as its unit runs it, as its user, on free ports.
    let (kafka, admin) = (free_port(), free_port());
    let mut command = exec_start("millrace-broker.service")?;
    command.extend([
        "--listen".to_string(),
        format!("127.0.0.1:{kafka}"),
        "--admin-listen".to_string(),
        format!("127.0.0.1:{admin}"),
    ]);
    // setpriv execs the command itself (runuser would stay its parent), so SIGTERM reaches it.
    let mut broker = Command::new("setpriv")
        .args(["--reuid", "millrace", "--regid", "millrace", "--init-groups", "--"])
        .args(&command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Its log goes to stderr: read as it runs, so a full pipe cannot stall the broker.
    let drained = Drained::take(&mut broker);
    let served = (|| -> anyhow::Result<()> {
        wait_for("the packaged broker ready", Duration::from_secs(60), || {
            Ok(http_status_at(&format!("127.0.0.1:{admin}"), "/health").is_ok_and(|(code, _)| code == 200))
        })?;
        let bootstrap = format!("127.0.0.1:{kafka}");
        millrace(&["topic", "create", "pkg", "--partitions", "1", "--bootstrap", &bootstrap])?;
        let data = std::fs::metadata("/var/lib/millrace/broker/pkg-0")?;
        assert_eq!(data.uid(), uid, "the broker writes as its own user, under /var/lib/millrace");
        Ok(())
    })();
    let _ = Command::new("kill").args(["-TERM", &broker.id().to_string()]).status();
    let status = millrace_tests::wait_or_kill(&mut broker, std::time::Instant::now() + Duration::from_secs(30))?;
    let log = String::from_utf8_lossy(&drained.finish().1).into_owned();
    served.with_context(|| format!("the packaged broker's log:\n{log}"))?;
    assert!(status.is_some_and(|s| s.success()), "the broker stops cleanly on SIGTERM: {status:?}; its log:\n{log}");
    Ok(())
}
