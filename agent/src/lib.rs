//! millrace agent: tails log files and samples host metrics, shipping them to the broker.
//!
//! Not built yet: the agent is planned in its own issue (file tailing, host metrics, syslog,
//! checkpoints, disk buffer). This crate exists so the workspace has its final shape; it exports
//! nothing that could be mistaken for a working component.
