//! Controller-to-controller RPC over TCP: Raft's append_entries / vote / install_snapshot plus
//! proposal forwarding, as length-prefixed JSON frames (`[len: u32 BE][JSON]`), one request in
//! flight per connection.
//!
//! Client side: [`Network`] (openraft's `RaftNetworkFactory`) hands out one [`PeerClient`] per
//! target; openraft keeps it for the life of a replication stream, so its TCP connection is
//! reused. Server side: [`serve`] accepts connections and dispatches frames to the local `Raft`.
//!
//! With `[controller.tls]`, peers are authenticated by mutual TLS with the cluster CA and must be
//! the node their certificate names ([`Transport`]): a client refuses a controller that is not
//! the node it dialled, the server closes a connection whose request speaks for another node.
//! In any case the server takes connections only from [`PeerAccess`]:
//! the voters' addresses (host names resolved at start-up, every [`RESOLVE_INTERVAL`] and when
//! an unknown address connects), `controller.allowed_peers`, loopback and this broker's own
//! addresses. Anyone else is closed on arrival with a warning and a metric. Connections are
//! bounded in number ([`MAX_CONNECTIONS`]), idle time ([`IDLE_TIMEOUT`]) and frame size
//! ([`MAX_FRAME`]); a frame's buffer grows as its bytes arrive and must be complete within
//! [`FRAME_TIMEOUT`]. A single broker has no listener at all: its quorum of one runs in-process.
//!
//! Map:
//! - `access`: [`PeerAccess`], who may connect (addresses, networks, resolved host names).
//! - `messages`: the RPC request and response types and [`NetError`].
//! - `frame`: the length-prefixed JSON framing, with its size bound and growing buffer.
//! - `client`: [`RpcClient`] (one reusable connection) and openraft's [`Network`] / [`PeerClient`].
//! - `server`: [`RpcListener`] and [`serve`], which answers every RPC from the local `Raft`.
//! - `transport`: [`Transport`], plain TCP or mutual TLS naming node ids, and the claims checked.

mod access;
mod client;
mod frame;
mod messages;
mod server;
#[cfg(test)]
mod tests;
mod transport;

pub use access::PeerAccess;
pub(crate) use client::RpcClient;
pub use client::{Network, PeerClient};
pub use messages::NetError;
pub(crate) use messages::{RpcRequest, RpcResponse};
pub use server::RpcListener;
pub(crate) use server::{serve, Served};
pub use transport::Transport;

use std::time::Duration;

/// Largest frame accepted; snapshots are sent in chunks well below this.
pub const MAX_FRAME: usize = 64 << 20;
/// First allocation for a frame's body; it doubles as the bytes fill it.
const FIRST_STEP: usize = 64 * 1024;
/// Open connections to the controller listener (from allowed peers: a few per broker).
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends no frame for this long is closed; Raft heartbeats keep live ones busy.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Clients reconnect instead of reusing a connection unused for this long, so they do not
/// write into one the server is closing for idleness.
const CLIENT_MAX_IDLE: Duration = Duration::from_secs(300);
/// Time for a frame to arrive once its length did, and for a response to be taken.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Least time given to an RPC that must first connect (and shake hands) with its peer.
const CONNECT_BUDGET: Duration = Duration::from_secs(1);
/// Time for a peer's TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the allowed peers' host names are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);
/// An unknown address triggers a new resolution at most this often.
const RESOLVE_ON_MISMATCH_EVERY: Duration = Duration::from_secs(10);
/// Bound on resolving one host name.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
