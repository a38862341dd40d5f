//! The nemesis's faults: a seeded schedule of episodes, each one or two overlapping faults on a
//! 3-broker [`Cluster`] from [`Cluster::start_netns`], injected and then undone.
//!
//! Episode kinds: one fault alone (SIGKILL, SIGSTOP/SIGCONT, a full network cut, a one-way
//! partition, a step of one broker's wall clock forward or back and then back in step); two faults on two brokers overlapping in time (any pair of those: with two
//! brokers out the partitions lose their `min.insync.replicas` and acks=all writes must fail);
//! two brokers SIGKILLed together; the metadata-quorum leader SIGKILLed (with another broker
//! paused meanwhile, at random); and a broker SIGKILLed while a reassignment copies a partition
//! onto it. The same seed gives the same choices (not the same timings: those follow the
//! cluster), so a failing run can be replayed.

use crate::cluster::Cluster;
use crate::jepsen::unix_now;
use anyhow::Context;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Bound on electing a new metadata-quorum leader after the old one was killed.
const QUORUM_ELECTION: Duration = Duration::from_secs(60);
/// Bound on a reassignment's first step (dropping a replica) and on its completion.
const REASSIGNMENT: Duration = Duration::from_secs(180);
/// After the second of two brokers went down, acknowledgements already on their way may still
/// arrive for this long; later ones are counted as acknowledged with two of three brokers down.
const TWO_DOWN_GRACE: Duration = Duration::from_secs(4);
/// Bound on killed brokers registering again once the episode's faults are over.
const REJOIN: Duration = Duration::from_secs(90);

/// SplitMix64: small, seedable, and good enough to pick faults.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration between `low` and `high` milliseconds.
    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high.saturating_sub(low) + 1))
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Kinds of fault, as counted in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// SIGKILL of one broker, restarted later.
    Kill,
    /// SIGSTOP of one broker, SIGCONT later.
    Pause,
    /// One broker cut off from everything (both directions).
    Cut,
    /// One broker's packets to some peers (and maybe the clients) dropped, theirs still arriving.
    OneWay,
    /// Two brokers SIGKILLed together.
    TwoDown,
    /// The metadata-quorum leader SIGKILLed.
    ControllerKill,
    /// A broker SIGKILLed while a reassignment adds it back to a partition.
    ReassignRestart,
    /// One broker's wall clock stepped (libfaketime), later stepped back.
    ClockStep,
    /// The pipeline's agent SIGKILLed during an episode, restarted after it.
    AgentKill,
    /// The pipeline's sink SIGKILLed during an episode, restarted after it.
    SinkKill,
}

impl Kind {
    /// The name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Cut => "cut",
            Kind::OneWay => "one-way",
            Kind::TwoDown => "two-down",
            Kind::ControllerKill => "controller-kill",
            Kind::ReassignRestart => "reassign-restart",
            Kind::ClockStep => "clock-step",
            Kind::AgentKill => "agent-kill",
            Kind::SinkKill => "sink-kill",
        }
    }

    /// Every kind, in summary order.
    pub const ALL: [Kind; 10] = [
        Kind::Kill,
        Kind::Pause,
        Kind::Cut,
        Kind::OneWay,
        Kind::TwoDown,
        Kind::ControllerKill,
        Kind::ReassignRestart,
        Kind::ClockStep,
        Kind::AgentKill,
        Kind::SinkKill,
    ];
}

/// One fault on one broker that can start and end independently of another.
#[derive(Clone, Debug)]
enum Simple {
    Kill(i32),
    Pause(i32),
    Cut(i32),
    OneWay { from: i32, to: Vec<i32>, clients: bool },
    ClockStep { id: i32, seconds: i64 },
}

/// Clock steps, seconds: small and large, both directions.
const CLOCK_STEPS: [i64; 8] = [-3600, -300, -30, -5, 5, 30, 300, 3600];

impl Simple {
    fn kind(&self) -> Kind {
        match self {
            Simple::Kill(_) => Kind::Kill,
            Simple::Pause(_) => Kind::Pause,
            Simple::Cut(_) => Kind::Cut,
            Simple::OneWay { .. } => Kind::OneWay,
            Simple::ClockStep { .. } => Kind::ClockStep,
        }
    }

    fn start(&self, cluster: &mut Cluster) -> anyhow::Result<()> {
        match self {
            Simple::Kill(id) => {
                cluster.kill9(*id);
                Ok(())
            }
            Simple::Pause(id) => cluster.pause(*id),
            Simple::Cut(id) => cluster.isolate(*id),
            Simple::OneWay { from, to, clients } => cluster.cut_one_way(*from, to, *clients),
            Simple::ClockStep { id, seconds } => cluster.step_clock(*id, *seconds),
        }
    }

    /// Undoes the fault. A killed broker is only started again: the episode waits for it to
    /// rejoin once every fault of the episode is over.
    fn end(&self, cluster: &mut Cluster) -> anyhow::Result<()> {
        match self {
            Simple::Kill(id) => cluster.spawn_again(*id),
            Simple::Pause(id) => cluster.resume(*id),
            Simple::Cut(id) => cluster.heal(*id),
            Simple::OneWay { from, .. } => cluster.heal_one_way(*from),
            Simple::ClockStep { id, .. } => cluster.step_clock(*id, 0),
        }
    }
}

/// What the nemesis did so far.
#[derive(Default)]
pub struct Record {
    /// Faults injected per kind.
    pub counts: BTreeMap<Kind, u64>,
    /// One line per fault event, with the time since the start.
    pub log: Vec<String>,
    /// Unix-time windows in which two brokers were down: no acks=all write may be acknowledged.
    pub two_down_windows: Vec<(f64, f64)>,
    /// Reassign-restart faults whose reassignment was still listed as ongoing at the kill.
    pub reassign_in_progress: u64,
    started: Option<Instant>,
}

impl Record {
    /// Faults injected so far.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Counts one fault of `kind`.
    pub fn count(&mut self, kind: Kind) {
        *self.counts.entry(kind).or_default() += 1;
    }

    /// Logs one fault event with the time since the start.
    pub fn note(&mut self, event: String) {
        let started = *self.started.get_or_insert_with(Instant::now);
        let line = format!("[{:7.1}s] {event}", started.elapsed().as_secs_f64());
        eprintln!("nemesis {line}");
        self.log.push(line);
    }

    /// `kill=… pause=… …` for the summary line.
    pub fn counts_text(&self) -> String {
        Kind::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), self.counts.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Injects episodes into one cluster.
pub struct Nemesis {
    /// The schedule's generator.
    pub rng: Rng,
    /// What was done.
    pub record: Record,
    /// Kinds not yet injected: the first episodes cover them all (a short run still has every
    /// kind), then episodes are drawn at random.
    pending: Vec<u64>,
    /// The topic whose partitions are reassigned.
    topic: String,
    partitions: i32,
    /// Killed brokers started again in this episode, not yet seen rejoining.
    respawned: Vec<i32>,
}

impl Nemesis {
    /// A nemesis with `seed`, reassigning partitions of `topic` (`partitions` of them).
    pub fn new(seed: u64, topic: &str, partitions: i32) -> Nemesis {
        Nemesis {
            rng: Rng::new(seed),
            record: Record::default(),
            pending: (0..7).collect(),
            topic: topic.to_string(),
            partitions,
            respawned: Vec::new(),
        }
    }

    /// Runs one episode; every broker is running, connected and resumed again when it returns Ok.
    pub fn episode(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        let choice = if self.pending.is_empty() {
            self.rng.below(10)
        } else {
            let at = self.rng.below(self.pending.len() as u64) as usize;
            self.pending.remove(at)
        };
        let done = match choice {
            1 | 7 => self.overlapping(cluster),
            2 => self.two_down(cluster),
            3 => self.controller_kill(cluster),
            4 => self.reassign_restart(cluster),
            // One-way partitions, clock steps and cuts alone, so that short runs have them too.
            5 => {
                let id = self.broker(cluster, &[]);
                let fault = self.one_way(cluster, id);
                self.single(cluster, fault)
            }
            6 => {
                let fault = Simple::ClockStep { id: self.broker(cluster, &[]), seconds: self.rng.pick(&CLOCK_STEPS) };
                self.single(cluster, fault)
            }
            8 => {
                let fault = Simple::Cut(self.broker(cluster, &[]));
                self.single(cluster, fault)
            }
            _ => {
                let fault = self.simple(cluster, &[]);
                self.single(cluster, fault)
            }
        };
        done?;
        self.rejoin(cluster)
    }

    fn broker(&mut self, cluster: &Cluster, except: &[i32]) -> i32 {
        let ids: Vec<i32> = cluster.ids().into_iter().filter(|id| !except.contains(id)).collect();
        self.rng.pick(&ids)
    }

    fn one_way(&mut self, cluster: &Cluster, from: i32) -> Simple {
        let others: Vec<i32> = cluster.ids().into_iter().filter(|&id| id != from).collect();
        let to = if self.rng.below(2) == 0 { others } else { vec![self.rng.pick(&others)] };
        Simple::OneWay { from, to, clients: self.rng.below(3) == 0 }
    }

    fn simple(&mut self, cluster: &Cluster, except: &[i32]) -> Simple {
        let id = self.broker(cluster, except);
        match self.rng.below(5) {
            0 => Simple::Kill(id),
            1 => Simple::Pause(id),
            2 => Simple::Cut(id),
            3 => Simple::ClockStep { id, seconds: self.rng.pick(&CLOCK_STEPS) },
            _ => self.one_way(cluster, id),
        }
    }

    fn begin(&mut self, cluster: &mut Cluster, fault: &Simple) -> anyhow::Result<()> {
        self.record.note(format!("start {fault:?}"));
        fault.start(cluster).with_context(|| format!("starting {fault:?}"))?;
        self.record.count(fault.kind());
        Ok(())
    }

    fn finish(&mut self, cluster: &mut Cluster, fault: &Simple) -> anyhow::Result<()> {
        self.record.note(format!("end {fault:?}"));
        fault.end(cluster).with_context(|| format!("ending {fault:?}"))?;
        if let Simple::Kill(id) = fault {
            self.respawned.push(*id);
        }
        Ok(())
    }

    /// Waits for the brokers started again during the episode to rejoin.
    fn rejoin(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        let ids = std::mem::take(&mut self.respawned);
        if ids.is_empty() {
            return Ok(());
        }
        cluster.wait_rejoined(&ids, REJOIN).with_context(|| format!("brokers {ids:?} rejoining after the episode"))
    }

    fn single(&mut self, cluster: &mut Cluster, fault: Simple) -> anyhow::Result<()> {
        self.begin(cluster, &fault)?;
        std::thread::sleep(self.rng.millis(2_000, 9_000));
        self.finish(cluster, &fault)
    }

    /// Two faults on two brokers: the second starts while the first holds, they end in either
    /// order.
    fn overlapping(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        let first = self.simple(cluster, &[]);
        let first_id = match &first {
            Simple::Kill(id) | Simple::Pause(id) | Simple::Cut(id) | Simple::ClockStep { id, .. } => *id,
            Simple::OneWay { from, .. } => *from,
        };
        let second = self.simple(cluster, &[first_id]);
        self.record.note("overlapping pair".into());
        self.begin(cluster, &first)?;
        std::thread::sleep(self.rng.millis(500, 4_000));
        self.begin(cluster, &second)?;
        std::thread::sleep(self.rng.millis(1_000, 6_000));
        let (a, b) = if self.rng.below(2) == 0 { (first, second) } else { (second, first) };
        self.finish(cluster, &a)?;
        std::thread::sleep(self.rng.millis(0, 3_000));
        self.finish(cluster, &b)
    }

    /// Two brokers killed: no partition keeps two in-sync replicas and the metadata quorum has
    /// no majority, so nothing may be acknowledged until they are back.
    fn two_down(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        let a = self.broker(cluster, &[]);
        let b = self.broker(cluster, &[a]);
        self.record.note(format!("start two-down: kill -9 brokers {a} and {b}"));
        cluster.kill9(a);
        std::thread::sleep(self.rng.millis(0, 1_500));
        cluster.kill9(b);
        self.record.count(Kind::TwoDown);
        std::thread::sleep(TWO_DOWN_GRACE);
        let from = unix_now();
        std::thread::sleep(self.rng.millis(3_000, 8_000));
        let to = unix_now();
        self.record.two_down_windows.push((from, to));
        self.record.note(format!("end two-down: restarting brokers {a} and {b}"));
        cluster.restart_all(&[a, b]).context("restarting after two-down")
    }

    /// The metadata-quorum leader killed, at random with another broker paused meanwhile.
    fn controller_kill(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        let mut leader = None;
        crate::wait_for("the brokers to agree on a metadata quorum leader", QUORUM_ELECTION, || {
            leader = cluster.quorum_leader();
            Ok(leader.is_some())
        })?;
        let leader = leader.context("no quorum leader")?;
        self.record.note(format!("start controller-kill: kill -9 the quorum leader, broker {leader}"));
        cluster.kill9(leader);
        self.record.count(Kind::ControllerKill);
        let paused = if self.rng.below(2) == 0 {
            std::thread::sleep(self.rng.millis(200, 2_000));
            let other = self.broker(cluster, &[leader]);
            let fault = Simple::Pause(other);
            self.begin(cluster, &fault)?;
            std::thread::sleep(self.rng.millis(1_000, 5_000));
            self.finish(cluster, &fault)?;
            true
        } else {
            false
        };
        let successor = cluster.wait_quorum_leader_change(leader, QUORUM_ELECTION)?;
        self.record.note(format!("broker {successor} leads the quorum (another broker was paused: {paused})"));
        std::thread::sleep(self.rng.millis(0, 4_000));
        self.record.note(format!("end controller-kill: restarting broker {leader}"));
        cluster.restart(leader)
    }

    /// A replica dropped from a partition and added back; the broker receiving the copy (or the
    /// partition's leader) is killed while the reassignment is ongoing, then restarted.
    fn reassign_restart(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        let topic = self.topic.clone();
        let partition = self.rng.below(self.partitions as u64) as i32;
        let parts = cluster.wait_isr_full(&topic, REASSIGNMENT)?;
        let info = parts.iter().find(|p| p.partition == partition).context("partition missing")?.clone();
        let moved = self.rng.pick(&info.replicas);
        let without: Vec<i32> = info.replicas.iter().copied().filter(|&r| r != moved).collect();
        self.record.note(format!("reassign {topic}-{partition}: {:?} -> {without:?}", info.replicas));
        cluster.reassign(&topic, partition, &without)?;
        cluster.wait_partitions(&topic, "the replica dropped", REASSIGNMENT, |parts| {
            parts.iter().any(|p| p.partition == partition && p.replicas.len() == without.len())
        })?;
        let mut back = without.clone();
        back.push(moved);
        self.record.note(format!("reassign {topic}-{partition}: {without:?} -> {back:?}"));
        cluster.reassign(&topic, partition, &back)?;
        let victim = if self.rng.below(3) == 0 { info.leader.max(1) } else { moved };
        let listing = cluster.reassignments().unwrap_or_default();
        let ongoing = listing.lines().any(|l| l.starts_with(&format!("{topic}-{partition}\t")));
        if ongoing {
            self.record.reassign_in_progress += 1;
        }
        self.record.note(format!(
            "start reassign-restart: kill -9 broker {victim} (reassignment listed as ongoing: {ongoing})"
        ));
        cluster.kill9(victim);
        self.record.count(Kind::ReassignRestart);
        std::thread::sleep(self.rng.millis(1_000, 6_000));
        self.record.note(format!("end reassign-restart: restarting broker {victim}"));
        cluster.restart(victim)?;
        cluster.wait_partitions(&topic, "the reassignment completed", REASSIGNMENT, |parts| {
            parts.iter().any(|p| p.partition == partition && p.replicas.len() == back.len() && p.isr_complete())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_bounded() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::new(8);
        assert_ne!(Rng::new(7).next_u64(), c.next_u64());
        for _ in 0..1000 {
            assert!(c.below(3) < 3);
            let d = c.millis(5, 10);
            assert!(d >= Duration::from_millis(5) && d <= Duration::from_millis(10));
        }
    }
}
