//! Network faults (isolation, one-way partitions) and partition reassignments on a running
//! cluster; process faults (kill, pause, restart) and clock steps live with the lifecycle.

use super::Cluster;
use crate::millrace;
use anyhow::Context;

impl Cluster {
    /// Cuts broker `id` off from the other brokers and from clients outside its namespace
    /// (needs [`Cluster::start_netns`]).
    pub fn isolate(&mut self, id: i32) -> anyhow::Result<()> {
        self.index(id); // panics on an unknown id
        self.network.as_mut().context("isolate needs a cluster from Cluster::start_netns")?.isolate(id)
    }

    /// Reconnects broker `id` after [`Cluster::isolate`].
    pub fn heal(&mut self, id: i32) -> anyhow::Result<()> {
        self.index(id); // panics on an unknown id
        self.network.as_mut().context("heal needs a cluster from Cluster::start_netns")?.heal(id)
    }

    /// One-way partition: broker `id`'s packets to brokers `to` (and to the test's clients when
    /// `clients`) are dropped, theirs still reach it (needs [`Cluster::start_netns`]). New
    /// connections it opens to them fail at once, established ones stall. Until
    /// [`Cluster::heal_one_way`] it is not "live" for the harness: it cannot learn the current
    /// metadata, so the `wait_*` helpers must not wait for its view.
    pub fn cut_one_way(&mut self, id: i32, to: &[i32], clients: bool) -> anyhow::Result<()> {
        self.index(id); // panics on an unknown id
        let net = self.network.as_mut().context("cut_one_way needs a cluster from Cluster::start_netns")?;
        let mut addresses: Vec<String> = to.iter().map(|&other| net.ip(other)).collect();
        if clients {
            addresses.push(net.host_ip());
        }
        net.drop_outgoing(id, &addresses)?;
        self.broker_mut(id).cut_one_way = true;
        Ok(())
    }

    /// Undoes [`Cluster::cut_one_way`] for broker `id`.
    pub fn heal_one_way(&mut self, id: i32) -> anyhow::Result<()> {
        self.index(id); // panics on an unknown id
        self.network
            .as_mut()
            .context("heal_one_way needs a cluster from Cluster::start_netns")?
            .restore_outgoing(id)?;
        self.broker_mut(id).cut_one_way = false;
        Ok(())
    }

    /// `millrace cluster reassign`: moves `topic`-`partition` to `replicas` (preferred leader
    /// first); returns once the controller accepted the move, not when it completed.
    pub fn reassign(&self, topic: &str, partition: i32, replicas: &[i32]) -> anyhow::Result<()> {
        let bootstrap = self.live_bootstrap();
        let partition = partition.to_string();
        let replicas = replicas.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let args = [
            "cluster",
            "reassign",
            "--topic",
            topic,
            "--partition",
            &partition,
            "--replicas",
            &replicas,
            "--bootstrap",
            &bootstrap,
        ];
        millrace(&args).map(|_| ())
    }

    /// `millrace cluster reassignments`: the ongoing reassignments as the CLI prints them.
    pub fn reassignments(&self) -> anyhow::Result<String> {
        let bootstrap = self.live_bootstrap();
        millrace(&["cluster", "reassignments", "--bootstrap", &bootstrap])
    }
}
