//! The network-partition mechanism on its own, without a broker: a server in one namespace is
//! reachable from the root namespace and from another node, unreachable from both (but still
//! from inside its own namespace) while isolated, reachable again once healed; and every
//! namespace and interface is gone after the network is dropped, also after a panic.
//! Skipped (with a message) where network namespaces are not available.

use millrace_tests::netns::{self, Network};
use millrace_tests::{connect_timeout, http_get_at, python_bin, run, wait_until};
use std::process::{Child, Stdio};
use std::time::Duration;

const PORT: u16 = 8000;

/// Kills the child when dropped, so a failing assertion does not leave the server running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reachable_from_root(addr: &str) -> bool {
    connect_timeout(addr, Duration::from_millis(700)).is_ok()
}

/// Connects from inside node `from`'s namespace.
fn reachable_from_node(net: &Network, from: i32, addr: &str) -> anyhow::Result<bool> {
    let (host, port) = addr.split_once(':').expect("HOST:PORT");
    let probe = format!(
        "import socket, sys\ntry:\n    socket.create_connection(({host:?}, {port}), 0.7)\nexcept OSError:\n    sys.exit(3)\n"
    );
    let prefix = net.exec_prefix(from);
    let mut args: Vec<&str> = prefix.iter().skip(1).map(String::as_str).collect();
    let python = python_bin();
    args.extend([python.as_str(), "-c", &probe]);
    match run(&prefix[0], &args, None, Duration::from_secs(20)) {
        Ok(_) => Ok(true),
        Err(e) if format!("{e}").contains("exit status: 3") => Ok(false),
        Err(e) => Err(e),
    }
}

#[test]
fn isolate_cuts_a_node_off_and_heal_reconnects_it() -> anyhow::Result<()> {
    let mut net = match Network::create(2) {
        Ok(net) => net,
        Err(skip) => return netns::skip_or_fail(&skip),
    };
    let addr = format!("{}:{PORT}", net.ip(1));
    let server = net
        .command(1, python_bin())
        .args(["-m", "http.server", &PORT.to_string(), "--bind", &net.ip(1)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _server = KillOnDrop(server);
    wait_until("the server in node 1 to be reachable", Duration::from_secs(20), || reachable_from_root(&addr))?;
    assert!(http_get_at(&addr, "/")?.contains("Directory listing"), "the server answers HTTP across the bridge");
    assert!(reachable_from_node(&net, 2, &addr)?, "node 2 reaches node 1");
    // A listener in the root namespace, on the bridge address.
    let root = std::net::TcpListener::bind((net.host_ip().as_str(), 0))?;
    let root_addr = root.local_addr()?.to_string();
    assert!(reachable_from_node(&net, 1, &root_addr)?, "node 1 reaches the root namespace");

    net.isolate(1)?;
    assert!(net.is_isolated(1));
    assert!(!reachable_from_root(&addr), "the root namespace still reaches an isolated node");
    assert!(!reachable_from_node(&net, 2, &addr)?, "node 2 still reaches an isolated node");
    assert!(reachable_from_node(&net, 1, &addr)?, "inside its own namespace the node stays reachable");
    assert!(!reachable_from_node(&net, 1, &root_addr)?, "an isolated node still reaches the root namespace");

    net.heal(1)?;
    assert!(!net.is_isolated(1));
    wait_until("the healed node to be reachable again", Duration::from_secs(10), || reachable_from_root(&addr))?;
    assert!(reachable_from_node(&net, 2, &addr)?, "node 2 reaches node 1 again");

    let names = net.resource_names();
    assert_eq!(names.len(), 5, "bridge plus a namespace and a veth per node: {names:?}");
    assert!(names.iter().all(|n| netns::exists(n)), "{names:?}");
    drop(_server);
    drop(net);
    let left: Vec<&String> = names.iter().filter(|n| netns::exists(n)).collect();
    assert!(left.is_empty(), "left behind after drop: {left:?}");
    Ok(())
}

#[test]
fn network_is_removed_when_a_test_panics() -> anyhow::Result<()> {
    let mut names = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), netns::Skip> {
        let net = Network::create(1)?;
        names = net.resource_names();
        panic!("a failing test");
    }));
    match outcome {
        Ok(Err(skip)) => return netns::skip_or_fail(&skip),
        Ok(Ok(())) => unreachable!("the closure panics"),
        Err(_) => {}
    }
    assert_eq!(names.len(), 3, "{names:?}");
    let left: Vec<&String> = names.iter().filter(|n| netns::exists(n)).collect();
    assert!(left.is_empty(), "left behind after a panic: {left:?}");
    Ok(())
}
