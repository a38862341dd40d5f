//! The Jepsen-style checker's own unit tests (tests/python/test_jepsen_checker.py): every anomaly
//! class is detected on a synthetic history and a clean history passes.

use millrace_tests::{python_bin, run, workspace_root};
use std::time::Duration;

#[test]
fn jepsen_checker_unit_tests_pass() -> anyhow::Result<()> {
    let dir = workspace_root().join("tests").join("python").display().to_string();
    let out = run(
        &python_bin(),
        &["-m", "unittest", "discover", "-s", &dir, "-p", "test_jepsen_checker.py"],
        None,
        Duration::from_secs(60),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OK"), "{stderr}");
    Ok(())
}
