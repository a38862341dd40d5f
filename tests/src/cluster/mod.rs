//! A cluster of real `millrace broker` processes for failover tests, with fault injection:
//! kill -9, SIGSTOP/SIGCONT, clean stop, restart on the same data, and (with
//! [`Cluster::start_netns`]) network partitions.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use millrace_tests::cluster::Cluster;
//! use std::time::Duration;
//! let mut cluster = Cluster::start(3, "[replication]\nreplica_lag_time_max = \"10s\"\n")?;
//! cluster.create_topic("t", 3, 3, &["min.insync.replicas=2"])?;
//! let leader = cluster.leader_of("t", 0)?;
//! cluster.kill9(leader);
//! cluster.wait_new_leader("t", 0, leader, Duration::from_secs(30))?;
//! cluster.restart(leader)?;
//! cluster.wait_isr_full("t", Duration::from_secs(60))?;
//! # Ok(()) }
//! ```
//!
//! Broker ids are 1 ..= n. Every broker runs with the same `voters` list; the harness writes
//! `node_id`, `data_dir`, `listen`, `admin_listen`, `controller_listen` and `voters`, and appends
//! the caller's `extra_toml` (e.g. `[replication]` and `[controller]` tables). A broker counts as
//! started once its own log (the part written since its latest start) says `broker ready` with its
//! Kafka address and then `broker registered` for its id, and every live broker lists it as
//! unfenced in DescribeCluster.
//!
//! Partition state is read with Metadata requests straight to the brokers the harness believes
//! reachable ("live": running, not paused, not isolated); the `wait_*` helpers require a
//! condition to hold in *every* live broker's view, so a broker with stale metadata cannot make a
//! wait succeed early.
//!
//! Here: starting, stopping, killing, pausing and restarting brokers, and clock steps. The views
//! and waits are in `views`, network faults and reassignments in `faults`.

use crate::netns::{self, Network};
use crate::{broker_command, free_port, is_ready_line, lost_port_race, wait_for, LoggedProcess};
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod faults;
mod views;

pub use views::{
    fetch_cluster_view, fetch_partitions, read_segments, read_stored, ClusterView, LogRecords, PartitionInfo,
    StoredRecord,
};

/// How long a broker may take to bind its listeners after spawning.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the metadata quorum may take to register a (re)started broker.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a clean stop before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Connect and read timeout of one Metadata request.
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// Fixed ports inside network namespaces (each broker has its own address there).
const NETNS_PORTS: (u16, u16, u16) = (9092, 9093, 9094);

/// True when `line` says the metadata quorum registered broker `id`: it contains
/// `broker registered`, and if the fields after that message name a broker (`broker=`,
/// `broker_id=`, `node_id=`, `id=`), one of them is `id`. (The state machine of every broker logs
/// the registrations of all brokers, so a bare match would accept another broker's registration.)
pub fn is_registered_line(line: &str, id: i32) -> bool {
    let Some((_, fields)) = line.split_once("broker registered") else { return false };
    let named: Vec<&str> = fields
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter(|(key, _)| matches!(*key, "broker" | "broker_id" | "node_id" | "id"))
        .map(|(_, value)| value.trim_matches(|c| c == '"' || c == ','))
        .collect();
    named.is_empty() || named.iter().any(|v| v.parse::<i32>() == Ok(id))
}

/// One broker of a [`Cluster`].
pub struct ClusterBroker {
    /// Node id (1-based).
    pub id: i32,
    /// Address all its listeners bind (127.0.0.1, or its namespace address).
    pub host: String,
    /// Kafka listener port.
    pub port: u16,
    /// Admin HTTP port.
    pub admin_port: u16,
    /// Metadata-quorum (controller) port.
    pub controller_port: u16,
    /// Data directory, kept across restarts.
    pub data_dir: PathBuf,
    config_path: PathBuf,
    process: LoggedProcess,
    paused: bool,
    /// Between [`Cluster::cut_one_way`] and [`Cluster::heal_one_way`].
    cut_one_way: bool,
}

impl ClusterBroker {
    /// `HOST:PORT` of the Kafka listener.
    pub fn kafka_addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `HOST:PORT` of the admin HTTP listener.
    pub fn admin_addr(&self) -> String {
        format!("{}:{}", self.host, self.admin_port)
    }

    /// `HOST:PORT` of the controller listener.
    pub fn controller_addr(&self) -> String {
        format!("{}:{}", self.host, self.controller_port)
    }

    /// Process id while the broker runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// True between [`Cluster::pause`] and [`Cluster::resume`].
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The broker's log, across restarts.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// N brokers forming one cluster; every process is killed and every directory (and network
/// namespace) removed on drop.
pub struct Cluster {
    brokers: Vec<ClusterBroker>,
    network: Option<Network>,
    dir: Option<tempfile::TempDir>,
    /// Brokers run under libfaketime ([`Cluster::start_netns_clocked`]).
    clocks: bool,
    /// How many brokers (the lowest ids) are voters of the metadata quorum; the rest join it as
    /// non-voting members.
    voters: usize,
}

impl Cluster {
    /// Starts `n` brokers on loopback with free ports and waits until every one is registered.
    pub fn start(n: usize, extra_toml: &str) -> anyhow::Result<Cluster> {
        Cluster::launch(n, &|_| extra_toml.to_string(), None, false)
    }

    /// [`Cluster::start`] with only brokers `1..=voters` voting in the metadata quorum.
    pub fn start_with_voters(n: usize, voters: usize, extra_toml: &str) -> anyhow::Result<Cluster> {
        Cluster::launch_with_voters(n, voters, &|_| extra_toml.to_string(), None, false)
    }

    /// [`Cluster::start`] with each broker's own extra configuration, `extra_toml(id)` (e.g.
    /// its certificate or another listener's port).
    pub fn start_each(n: usize, extra_toml: &dyn Fn(i32) -> String) -> anyhow::Result<Cluster> {
        Cluster::launch(n, extra_toml, None, false)
    }

    /// Starts `n` brokers, each in its own network namespace, so that [`Cluster::isolate`] can
    /// cut one off. Returns `Ok(None)` after printing `skipping: <reason>` when the machine does
    /// not allow network namespaces (fails instead when `MILLRACE_REQUIRE_NETNS` is set).
    pub fn start_netns(n: usize, extra_toml: &str) -> anyhow::Result<Option<Cluster>> {
        match Network::create(n) {
            Ok(network) => Cluster::launch(n, &|_| extra_toml.to_string(), Some(network), false).map(Some),
            Err(skip) => netns::skip_or_fail(&skip).map(|()| None),
        }
    }

    /// [`Cluster::start_netns`] with each broker's wall clock under the test's control
    /// ([`Cluster::step_clock`]): brokers run with libfaketime preloaded, reading their offset
    /// from a file in their directory. Only `CLOCK_REALTIME` and friends are faked; the monotonic
    /// clock (timers, timeouts) and the host's clock are untouched. Fails when libfaketime is
    /// missing (`scripts/install-deps.sh --tests` installs it).
    pub fn start_netns_clocked(n: usize, extra_toml: &str) -> anyhow::Result<Option<Cluster>> {
        libfaketime()?;
        match Network::create(n) {
            Ok(network) => Cluster::launch(n, &|_| extra_toml.to_string(), Some(network), true).map(Some),
            Err(skip) => netns::skip_or_fail(&skip).map(|()| None),
        }
    }

    /// Steps broker `id`'s wall clock to `seconds` away from the host's (0: back in step); it
    /// takes effect within a second. Needs [`Cluster::start_netns_clocked`].
    pub fn step_clock(&self, id: i32, seconds: i64) -> anyhow::Result<()> {
        anyhow::ensure!(self.clocks, "step_clock needs a cluster from Cluster::start_netns_clocked");
        let file = self.clock_file(id);
        let temporary = file.with_extension("tmp");
        // libfaketime's relative form: a signed number of seconds.
        std::fs::write(&temporary, format!("{seconds:+}\n")).context("writing the clock offset")?;
        std::fs::rename(&temporary, &file).context("replacing the clock offset file")
    }

    fn clock_file(&self, id: i32) -> PathBuf {
        self.broker(id).config_path.with_file_name("clock-offset")
    }

    fn launch(
        n: usize,
        extra_toml: &dyn Fn(i32) -> String,
        network: Option<Network>,
        clocks: bool,
    ) -> anyhow::Result<Cluster> {
        Cluster::launch_with_voters(n, n, extra_toml, network, clocks)
    }

    fn launch_with_voters(
        n: usize,
        voters: usize,
        extra_toml: &dyn Fn(i32) -> String,
        network: Option<Network>,
        clocks: bool,
    ) -> anyhow::Result<Cluster> {
        anyhow::ensure!(n >= 1 && (1..=n).contains(&voters), "a cluster needs at least one broker and voter");
        let dir = tempfile::Builder::new().prefix("millrace-cluster-").tempdir()?;
        let mut brokers = Vec::new();
        for id in 1..=n as i32 {
            let home = dir.path().join(format!("b{id}"));
            std::fs::create_dir_all(&home)?;
            brokers.push(ClusterBroker {
                id,
                host: network.as_ref().map_or_else(|| "127.0.0.1".to_string(), |net| net.ip(id)),
                port: 0,
                admin_port: 0,
                controller_port: 0,
                data_dir: home.join("data"),
                config_path: home.join("broker.toml"),
                process: LoggedProcess::new(home.join("broker.log")),
                paused: false,
                cut_one_way: false,
            });
        }
        let mut cluster = Cluster { brokers, network, dir: Some(dir), clocks, voters };
        if clocks {
            for id in cluster.ids() {
                cluster.step_clock(id, 0)?;
            }
        }
        // On loopback a port found free can be taken before the broker binds it: start over on
        // other ports (every config names every controller port, so all brokers restart).
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.assign_ports();
            cluster.write_configs(extra_toml)?;
            match cluster.spawn_all() {
                Ok(()) => return Ok(cluster),
                Err(e)
                    if attempt < 3
                        && cluster.network.is_none()
                        && cluster.brokers.iter().any(|b| lost_port_race(&b.process.fresh_log())) =>
                {
                    eprintln!("retrying cluster start on other ports: {e:#}");
                    for broker in &mut cluster.brokers {
                        broker.process.kill9();
                        match std::fs::remove_dir_all(&broker.data_dir) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                            _ => {}
                        }
                    }
                }
                Err(e) => return Err(e.context(format!("starting a {n}-broker cluster\n{}", cluster.log_tails(40)))),
            }
        }
    }

    fn assign_ports(&mut self) {
        if self.network.is_some() {
            for broker in &mut self.brokers {
                (broker.port, broker.controller_port, broker.admin_port) = NETNS_PORTS;
            }
            return;
        }
        let mut taken = std::collections::HashSet::new();
        let mut next = || loop {
            let port = free_port();
            if taken.insert(port) {
                return port;
            }
        };
        for broker in &mut self.brokers {
            (broker.port, broker.controller_port, broker.admin_port) = (next(), next(), next());
        }
    }

    fn write_configs(&self, extra_toml: &dyn Fn(i32) -> String) -> anyhow::Result<()> {
        let voters: Vec<String> =
            self.brokers.iter().take(self.voters).map(|b| format!("\"{}@{}\"", b.id, b.controller_addr())).collect();
        for broker in &self.brokers {
            let config = format!(
                "node_id = {}\ndata_dir = {:?}\nlisten = \"{}\"\nadmin_listen = \"{}\"\ncontroller_listen = \"{}\"\n\
                 voters = [{}]\n{}\n",
                broker.id,
                broker.data_dir.display().to_string(),
                broker.kafka_addr(),
                broker.admin_addr(),
                broker.controller_addr(),
                voters.join(", "),
                extra_toml(broker.id),
            );
            std::fs::write(&broker.config_path, config)?;
        }
        Ok(())
    }

    fn spawn_broker(&mut self, id: i32) -> anyhow::Result<()> {
        let mut prefix = self.network.as_ref().map(|net| net.exec_prefix(id)).unwrap_or_default();
        if self.clocks {
            // `env` execs in place like `ip netns exec`, so the broker keeps the child's pid.
            prefix.extend([
                "env".to_string(),
                format!("LD_PRELOAD={}", libfaketime()?.display()),
                format!("FAKETIME_TIMESTAMP_FILE={}", self.clock_file(id).display()),
                // Timers and timeouts run on the monotonic clock: leave it alone.
                "FAKETIME_DONT_FAKE_MONOTONIC=1".to_string(),
                "FAKETIME_CACHE_DURATION=1".to_string(),
            ]);
        }
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let broker = self.broker_mut(id);
        let command = broker_command(&broker.config_path, &prefix);
        broker.process.spawn(command).with_context(|| format!("spawning broker {id}"))?;
        broker.paused = false;
        Ok(())
    }

    /// Waits for `broker ready` and then `broker registered` in broker `id`'s fresh log.
    fn wait_started(&mut self, id: i32, register_deadline: Instant) -> anyhow::Result<()> {
        let broker = self.broker_mut(id);
        let kafka = broker.kafka_addr();
        broker
            .process
            .wait_for_line(&format!("broker {id} to bind its listeners"), READY_TIMEOUT, |l| is_ready_line(l, &kafka))
            .with_context(|| format!("broker {id}"))?;
        let left = register_deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        broker
            .process
            .wait_for_line(&format!("broker {id} to be registered by the metadata quorum"), left, |l| {
                is_registered_line(l, id)
            })
            .with_context(|| format!("broker {id}"))
    }

    fn spawn_all(&mut self) -> anyhow::Result<()> {
        // All first: the quorum forms only once a majority of voters runs.
        for id in self.ids() {
            self.spawn_broker(id)?;
        }
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        for id in self.ids() {
            self.wait_started(id, deadline)?;
        }
        self.wait_listed(&self.ids(), deadline)
    }

    /// Waits until every live broker lists all of `ids` as unfenced in DescribeCluster: registered
    /// *and* unfenced everywhere, so that e.g. a topic with replication factor n can be placed.
    fn wait_listed(&self, ids: &[i32], deadline: Instant) -> anyhow::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        let mut last = String::new();
        let what = format!("every live broker to list brokers {ids:?} as unfenced");
        wait_for(&what, left, || {
            let views = self.cluster_views();
            last = format!("{views:?}");
            Ok(views.iter().all(|(_, v)| v.as_ref().is_ok_and(|view| ids.iter().all(|id| view.brokers.contains(id)))))
        })
        .with_context(|| format!("last answers: {last}"))
    }

    /// Broker ids, 1 ..= n.
    pub fn ids(&self) -> Vec<i32> {
        self.brokers.iter().map(|b| b.id).collect()
    }

    fn index(&self, id: i32) -> usize {
        usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .filter(|&i| i < self.brokers.len())
            .unwrap_or_else(|| panic!("no broker {id} in a cluster of {}", self.brokers.len()))
    }

    /// Broker `id`.
    pub fn broker(&self, id: i32) -> &ClusterBroker {
        &self.brokers[self.index(id)]
    }

    fn broker_mut(&mut self, id: i32) -> &mut ClusterBroker {
        let index = self.index(id);
        &mut self.brokers[index]
    }

    /// The network namespaces, for a cluster started with [`Cluster::start_netns`].
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    /// Every broker's Kafka address, comma-separated (clients' `bootstrap.servers`).
    pub fn bootstrap(&self) -> String {
        self.brokers.iter().map(ClusterBroker::kafka_addr).collect::<Vec<_>>().join(",")
    }

    /// The Kafka addresses of the live brokers only.
    pub fn live_bootstrap(&self) -> String {
        self.live_ids().iter().map(|&id| self.broker(id).kafka_addr()).collect::<Vec<_>>().join(",")
    }

    /// True when broker `id` runs, is not paused, not isolated and not cut one way: it should
    /// answer requests with current metadata.
    pub fn is_live(&self, id: i32) -> bool {
        let broker = self.broker(id);
        broker.pid().is_some() && !broker.paused && !broker.cut_one_way && !self.is_isolated(id)
    }

    /// Ids of the live brokers.
    pub fn live_ids(&self) -> Vec<i32> {
        self.ids().into_iter().filter(|&id| self.is_live(id)).collect()
    }

    /// True between [`Cluster::isolate`] and [`Cluster::heal`].
    pub fn is_isolated(&self, id: i32) -> bool {
        self.network.as_ref().is_some_and(|net| net.is_isolated(id))
    }

    /// SIGKILL broker `id` (no clean shutdown); a paused broker is continued first.
    pub fn kill9(&mut self, id: i32) {
        let broker = self.broker_mut(id);
        broker.process.kill9();
        broker.paused = false;
    }

    /// SIGSTOP broker `id`: it keeps its sockets but answers nothing.
    pub fn pause(&mut self, id: i32) -> anyhow::Result<()> {
        let broker = self.broker_mut(id);
        broker.process.signal("STOP").with_context(|| format!("pausing broker {id}"))?;
        broker.paused = true;
        Ok(())
    }

    /// SIGCONT broker `id`.
    pub fn resume(&mut self, id: i32) -> anyhow::Result<()> {
        let broker = self.broker_mut(id);
        broker.process.signal("CONT").with_context(|| format!("resuming broker {id}"))?;
        broker.paused = false;
        Ok(())
    }

    /// SIGTERM broker `id` and wait for a clean exit (bounded; SIGKILL and an error otherwise).
    pub fn stop(&mut self, id: i32) -> anyhow::Result<()> {
        let broker = self.broker_mut(id);
        broker.paused = false;
        let status = broker.process.terminate(STOP_TIMEOUT).with_context(|| format!("stopping broker {id}"))?;
        if !status.success() {
            bail!("broker {id} exited with {status} on SIGTERM; log:\n{}", broker.log());
        }
        Ok(())
    }

    /// Starts broker `id` again (same config, ports and data) after [`Cluster::kill9`] or
    /// [`Cluster::stop`], and waits until it is ready and registered again.
    pub fn restart(&mut self, id: i32) -> anyhow::Result<()> {
        self.restart_all(&[id])
    }

    /// Starts broker `id` again after [`Cluster::kill9`] without waiting for it: while another
    /// fault holds (say, the quorum leader cannot send to it) it may not be able to register
    /// yet. [`Cluster::wait_rejoined`] waits for it later.
    pub fn spawn_again(&mut self, id: i32) -> anyhow::Result<()> {
        if self.broker_mut(id).process.is_running() {
            bail!("broker {id} is still running; kill9 or stop it before restarting");
        }
        self.spawn_broker(id)
    }

    /// Waits until brokers `ids`, started with [`Cluster::spawn_again`], are ready, registered
    /// and listed by every live broker, within `timeout`.
    pub fn wait_rejoined(&mut self, ids: &[i32], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for &id in ids {
            self.wait_started(id, deadline)
                .with_context(|| format!("broker {id} rejoining\n{}", self.log_tails(40)))?;
        }
        self.wait_listed(ids, deadline).with_context(|| format!("broker(s) {ids:?} rejoining\n{}", self.log_tails(40)))
    }

    /// Starts several stopped brokers at once and waits until all are ready and registered: a
    /// quorum that lost its majority only comes back when enough voters run at the same time.
    pub fn restart_all(&mut self, ids: &[i32]) -> anyhow::Result<()> {
        for &id in ids {
            if self.broker_mut(id).process.is_running() {
                bail!("broker {id} is still running; kill9 or stop it before restarting");
            }
            self.spawn_broker(id)?;
        }
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        for &id in ids {
            self.wait_started(id, deadline)
                .with_context(|| format!("restarting broker {id}\n{}", self.log_tails(40)))?;
        }
        self.wait_listed(ids, deadline).with_context(|| format!("restarting broker(s) {ids:?}\n{}", self.log_tails(40)))
    }

    /// A command running `program` on broker `id`'s side of any partition: inside its network
    /// namespace for a netns cluster, a plain local command otherwise.
    pub fn command_in(&self, id: i32, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.index(id); // panics on an unknown id
        match &self.network {
            Some(net) => net.command(id, program),
            None => Command::new(program),
        }
    }

    /// Broker `id`'s log, across restarts.
    pub fn log(&self, id: i32) -> String {
        self.broker(id).log()
    }

    /// The last `lines` lines of every broker's log, headed by broker id (for failure messages).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for broker in &self.brokers {
            let log = broker.log();
            let all: Vec<&str> = log.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "--- broker {} log, last {} of {} lines ---\n",
                broker.id,
                all.len() - from,
                all.len()
            ));
            for line in &all[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// GET `path` on broker `id`'s admin listener; returns the body.
    pub fn admin_get(&self, id: i32, path: &str) -> anyhow::Result<String> {
        crate::http_get_at(&self.broker(id).admin_addr(), path)
    }

    /// GET on broker `id`'s admin listener: the status and the body.
    pub fn admin_status(&self, id: i32, path: &str) -> anyhow::Result<(u16, String)> {
        crate::http_status_at(&self.broker(id).admin_addr(), path)
    }
}

/// The multi-threaded libfaketime library (`$MILLRACE_LIBFAKETIME`, else Debian's path).
fn libfaketime() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("MILLRACE_LIBFAKETIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"));
    anyhow::ensure!(
        path.exists(),
        "libfaketime is missing at {} (install the Debian package faketime, e.g. scripts/install-deps.sh --tests, \
         or set MILLRACE_LIBFAKETIME)",
        path.display()
    );
    Ok(path)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for broker in &mut self.brokers {
            broker.process.kill9();
        }
        // Shown only for failing tests (the test harness captures it otherwise).
        eprintln!("{}", self.log_tails(30));
        if std::env::var_os("MILLRACE_KEEP_TEST_DIRS").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept cluster directory {}", dir.keep().display());
            }
        }
        // The network (namespaces, veths, bridge) and the directory are removed as fields drop.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_lines_are_matched_by_broker_id() {
        let line = "2026-05-01T10:00:00.1Z DEBUG millrace_broker::controller::state_machine: broker registered \
                    broker=2 epoch=4 changed=true";
        assert!(is_registered_line(line, 2));
        assert!(!is_registered_line(line, 1));
        assert!(!is_registered_line(line, 12));
        // Span fields before the message do not count.
        let spanned = "INFO apply{node_id=3}: millrace_broker: broker registered broker=1 epoch=0";
        assert!(is_registered_line(spanned, 1));
        assert!(!is_registered_line(spanned, 3));
        assert!(is_registered_line("INFO millrace_broker: broker registered node_id=3 epoch=9", 3));
        // Without an id field the line is taken to be the broker's own.
        assert!(is_registered_line("INFO millrace_broker: broker registered epoch=9", 5));
        assert!(!is_registered_line("INFO millrace_broker: broker ready kafka=127.0.0.1:1", 1));
    }

    #[test]
    fn isr_complete_ignores_order() {
        let p = |replicas: Vec<i32>, isr: Vec<i32>| PartitionInfo {
            partition: 0,
            leader: 1,
            leader_epoch: 0,
            replicas,
            isr,
            error_code: 0,
        };
        assert!(p(vec![1, 2, 3], vec![3, 1, 2]).isr_complete());
        assert!(!p(vec![1, 2, 3], vec![1, 2]).isr_complete());
        assert!(!p(vec![], vec![]).isr_complete());
    }
}
