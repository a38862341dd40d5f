//! Network partitions for cluster tests, made of Linux network namespaces.
//!
//! Every node gets its own namespace with one veth pair; the outer ends are ports of a bridge in
//! the root namespace, which also holds an address on the bridge so the tests and their clients
//! (running in the root namespace) reach every node:
//!
//! ```text
//!   root namespace: bridge mr…b 10.A.B.254/24 ── veth mr…h1 ══ mr…n1 10.A.B.1  namespace millrace-…-1
//!                                             ── veth mr…h2 ══ mr…n2 10.A.B.2  namespace millrace-…-2
//! ```
//!
//! [`Network::isolate`] sets a node's outer veth end down: the node then reaches nothing outside
//! its namespace and nothing outside reaches it (packets are dropped, connections hang as in a
//! real partition), while processes inside its namespace still reach it.
//! [`Network::heal`] sets the link up again. [`Network::drop_outgoing`] makes a one-way partition:
//! blackhole routes inside a node's namespace silently drop what it sends to the chosen
//! addresses, while their packets still reach it (so a TCP connection hangs half-way, as behind a
//! one-way firewall rule); [`Network::restore_outgoing`] removes them. Names carry the test process id and a counter, so
//! concurrent tests and processes never collide, and everything is removed when the `Network`
//! is dropped (also while unwinding from a panic). Leftovers of test processes that were
//! SIGKILLed are removed by the next [`Network::create`].
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2; without them `create` returns a
//! [`Skip`] saying why.

use anyhow::{bail, Context};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Why network-namespace tests cannot run on this machine.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network namespaces unavailable: {}", self.0)
    }
}

impl std::error::Error for Skip {}

/// Set to a non-empty value other than `0` to turn a [`Skip`] into a test failure (for machines
/// that are known to support network namespaces).
pub const REQUIRE_ENV: &str = "MILLRACE_REQUIRE_NETNS";

/// Prints `skipping: <reason>` and returns Ok, or fails when [`REQUIRE_ENV`] is set or under CI
/// (`CI=true`, as CI services set it), where a silent skip would hide a test that never ran.
pub fn skip_or_fail(skip: &Skip) -> anyhow::Result<()> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    if set(REQUIRE_ENV) || set("CI") {
        bail!("{skip} (and {REQUIRE_ENV} or CI is set)");
    }
    eprintln!("skipping: {skip}");
    Ok(())
}

/// Serializes set-up and the stale sweep within this process (subnet choice reads the routes
/// other tests' networks add).
static SETUP: Mutex<()> = Mutex::new(());
static NEXT_NETWORK: AtomicU32 = AtomicU32::new(0);

const NAMESPACE_PREFIX: &str = "millrace-";

struct Node {
    namespace: String,
    outer: String,
    inner: String,
    isolated: bool,
    /// Addresses this node's packets to are dropped (one-way partition).
    blackholed: Vec<String>,
}

/// Nodes in network namespaces behind one bridge. Node ids start at 1.
pub struct Network {
    subnet: (u8, u8),
    bridge: Option<String>,
    nodes: Vec<Node>,
}

/// Runs `ip ARGS…`; the error names the command and carries its stderr.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("running `ip {}`: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {}` failed with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The process id encoded in an interface name this module creates (`mr<pid hex>x<n>b` for a
/// bridge, `mr<pid hex>x<n>h<id>` / `…n<id>` for veth ends), or None for any other name.
fn interface_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("mr")?;
    let (pid, rest) = rest.split_once('x')?;
    let counter_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (counter, kind) = rest.split_at(counter_len);
    let kind_ok = kind == "b"
        || (kind.len() > 1
            && (kind.starts_with('h') || kind.starts_with('n'))
            && kind[1..].bytes().all(|b| b.is_ascii_digit()));
    if counter.is_empty() || !kind_ok || pid.is_empty() {
        return None;
    }
    u32::from_str_radix(pid, 16).ok()
}

/// The process id in a namespace name this module creates (`millrace-<pid>-<n>-<id>`).
fn namespace_owner(name: &str) -> Option<u32> {
    let parts: Vec<&str> = name.strip_prefix(NAMESPACE_PREFIX)?.split('-').collect();
    match parts.as_slice() {
        [pid, counter, id] if counter.parse::<u32>().is_ok() && id.parse::<u32>().is_ok() => pid.parse().ok(),
        _ => None,
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and interfaces left by test processes that no longer exist.
fn sweep_stale() {
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if namespace_owner(name).is_some_and(|pid| !process_alive(pid)) {
                eprintln!("removing stale test network namespace {name}");
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show"]) {
        for line in list.lines() {
            // "7: mr1a2bx0h1@if6: <BROADCAST,…"
            let Some(name) = line.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n)) else { continue };
            if interface_owner(name).is_some_and(|pid| !process_alive(pid)) {
                eprintln!("removing stale test interface {name}");
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

/// A 10.A.B.0/24 subnet that no address or route of the root namespace uses yet.
fn choose_subnet(pid: u32, counter: u32) -> Result<(u8, u8), String> {
    let used = format!("{}\n{}", ip(&["-4", "-o", "addr", "show"])?, ip(&["-4", "route", "show", "table", "all"])?);
    // 10.200.0.0 – 10.249.255.0: 12800 candidates, starting at a spot derived from pid and counter.
    const SPAN: u32 = 50 * 256;
    let start = (pid.wrapping_mul(7919).wrapping_add(counter.wrapping_mul(104_729))) % SPAN;
    for k in (0..SPAN).map(|i| (start + i) % SPAN) {
        let (a, b) = (200 + (k / 256) as u8, (k % 256) as u8);
        if !used.contains(&format!("10.{a}.{b}.")) {
            return Ok((a, b));
        }
    }
    Err("no free 10.200-249.x.0/24 subnet".into())
}

impl Network {
    /// Creates `nodes` namespaces (1 ..= 9) joined by a bridge, or says why it cannot.
    pub fn create(nodes: usize) -> Result<Network, Skip> {
        assert!((1..=9).contains(&nodes), "a test network has 1 to 9 nodes, not {nodes}");
        if let Err(e) = Command::new("ip").arg("-V").output() {
            return Err(Skip(format!("the `ip` command (iproute2) cannot run: {e}")));
        }
        let _guard = SETUP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sweep_stale();
        let pid = std::process::id();
        let counter = NEXT_NETWORK.fetch_add(1, Ordering::Relaxed);
        let tag = format!("mr{pid:x}x{counter}");
        // Interface names have at most 15 bytes; the longest is "{tag}h9".
        if tag.len() + 2 > 15 {
            return Err(Skip(format!("interface name prefix {tag} too long")));
        }
        let subnet = choose_subnet(pid, counter).map_err(Skip)?;
        let mut network = Network { subnet, bridge: None, nodes: Vec::new() };
        // Whatever was created before a failure is removed by Drop.
        network.build(&tag, pid, counter, nodes).map_err(Skip)?;
        Ok(network)
    }

    fn build(&mut self, tag: &str, pid: u32, counter: u32, nodes: usize) -> Result<(), String> {
        let bridge = format!("{tag}b");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        self.bridge = Some(bridge.clone());
        ip(&["addr", "add", &format!("{}/24", self.host_ip()), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for id in 1..=nodes {
            let node = Node {
                namespace: format!("{NAMESPACE_PREFIX}{pid}-{counter}-{id}"),
                outer: format!("{tag}h{id}"),
                inner: format!("{tag}n{id}"),
                isolated: false,
                blackholed: Vec::new(),
            };
            ip(&["netns", "add", &node.namespace])?;
            let (namespace, outer, inner) = (node.namespace.clone(), node.outer.clone(), node.inner.clone());
            self.nodes.push(node);
            ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", &namespace])?;
            ip(&["link", "set", &outer, "master", &bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            let address = format!("{}/24", self.ip(id as i32));
            ip(&["-n", &namespace, "addr", "add", &address, "dev", &inner])?;
            ip(&["-n", &namespace, "link", "set", &inner, "up"])?;
            ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn position(&self, id: i32) -> usize {
        usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .filter(|&i| i < self.nodes.len())
            .unwrap_or_else(|| panic!("no node {id} in a network of {}", self.nodes.len()))
    }

    fn node(&self, id: i32) -> &Node {
        &self.nodes[self.position(id)]
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        let position = self.position(id);
        &mut self.nodes[position]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the network has no nodes (only while it is being built).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Address of node `id` (inside its namespace), `10.A.B.id`.
    pub fn ip(&self, id: i32) -> String {
        format!("10.{}.{}.{id}", self.subnet.0, self.subnet.1)
    }

    /// Address of the root namespace on the bridge, `10.A.B.254`.
    pub fn host_ip(&self) -> String {
        format!("10.{}.{}.254", self.subnet.0, self.subnet.1)
    }

    /// Name of node `id`'s namespace.
    pub fn namespace(&self, id: i32) -> &str {
        &self.node(id).namespace
    }

    /// Name of the bridge in the root namespace.
    pub fn bridge(&self) -> &str {
        self.bridge.as_deref().unwrap_or_default()
    }

    /// `["ip", "netns", "exec", NAMESPACE]`: put it in front of a command to run it in node `id`'s
    /// namespace (`ip netns exec` execs in place, so the child's pid is the command's).
    pub fn exec_prefix(&self, id: i32) -> Vec<String> {
        ["ip", "netns", "exec", self.namespace(id)].map(String::from).to_vec()
    }

    /// A command that runs `program` inside node `id`'s namespace; add arguments as usual.
    pub fn command(&self, id: i32, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.namespace(id)]).arg(program);
        command
    }

    /// Cuts node `id` off from the other nodes and from the root namespace.
    pub fn isolate(&mut self, id: i32) -> anyhow::Result<()> {
        let outer = self.node(id).outer.clone();
        ip(&["link", "set", &outer, "down"]).map_err(anyhow::Error::msg).with_context(|| format!("isolating {id}"))?;
        self.node_mut(id).isolated = true;
        Ok(())
    }

    /// Reconnects node `id`.
    pub fn heal(&mut self, id: i32) -> anyhow::Result<()> {
        let outer = self.node(id).outer.clone();
        ip(&["link", "set", &outer, "up"]).map_err(anyhow::Error::msg).with_context(|| format!("healing {id}"))?;
        self.node_mut(id).isolated = false;
        Ok(())
    }

    /// One-way partition: node `id` can no longer send to `addresses` (other nodes' or the host's),
    /// while they still reach it. Blackhole /32 routes in its namespace win over the subnet route.
    pub fn drop_outgoing(&mut self, id: i32, addresses: &[String]) -> anyhow::Result<()> {
        let namespace = self.namespace(id).to_string();
        for address in addresses {
            if self.node(id).blackholed.contains(address) {
                continue;
            }
            ip(&["-n", &namespace, "route", "add", "blackhole", &format!("{address}/32")])
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("dropping what node {id} sends to {address}"))?;
            self.node_mut(id).blackholed.push(address.clone());
        }
        Ok(())
    }

    /// Undoes every [`Network::drop_outgoing`] of node `id`.
    pub fn restore_outgoing(&mut self, id: i32) -> anyhow::Result<()> {
        let namespace = self.namespace(id).to_string();
        while let Some(address) = self.node(id).blackholed.last().cloned() {
            ip(&["-n", &namespace, "route", "del", "blackhole", &format!("{address}/32")])
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("restoring what node {id} sends to {address}"))?;
            self.node_mut(id).blackholed.pop();
        }
        Ok(())
    }

    /// Addresses node `id` currently cannot send to ([`Network::drop_outgoing`]).
    pub fn dropped_outgoing(&self, id: i32) -> &[String] {
        &self.node(id).blackholed
    }

    /// True between [`Network::isolate`] and [`Network::heal`].
    pub fn is_isolated(&self, id: i32) -> bool {
        self.node(id).isolated
    }

    /// Names of every namespace and interface this network created (for tests of the clean-up).
    pub fn resource_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.bridge.iter().cloned().collect();
        for node in &self.nodes {
            names.extend([node.namespace.clone(), node.outer.clone()]);
        }
        names
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Processes still inside a namespace keep it alive after `netns del`, but deleting the
        // outer veth end destroys the pair, so nothing stays connected to anything.
        for node in &self.nodes {
            let _ = ip(&["netns", "del", &node.namespace]);
            let _ = ip(&["link", "del", &node.outer]);
        }
        if let Some(bridge) = &self.bridge {
            let _ = ip(&["link", "del", bridge]);
        }
    }
}

/// True when `name` is a namespace (`ip netns list`) or an interface (`ip link`) that exists now.
pub fn exists(name: &str) -> bool {
    let in_namespaces =
        ip(&["netns", "list"]).is_ok_and(|l| l.lines().any(|l| l.split_whitespace().next() == Some(name)));
    in_namespaces || ip(&["link", "show", "dev", name]).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_parsed_only_from_our_names() {
        assert_eq!(interface_owner("mr1a2bx0b"), Some(0x1a2b));
        assert_eq!(interface_owner("mr1a2bx12h3"), Some(0x1a2b));
        assert_eq!(interface_owner("mrffx3n9"), Some(0xff));
        for other in ["eth0", "mr", "mrx0b", "mr12x", "mr12xb", "mr12x0", "mr12x0q1", "mr12x0h", "mrzzx0b", "mr12x0hx"]
        {
            assert_eq!(interface_owner(other), None, "{other}");
        }
        assert_eq!(namespace_owner("millrace-4242-0-1"), Some(4242));
        for other in ["millrace-4242-0", "millrace-a-0-1", "other-1-2-3", "millrace-1-2-3-4"] {
            assert_eq!(namespace_owner(other), None, "{other}");
        }
    }
}
