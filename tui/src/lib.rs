//! millrace top: the terminal UI showing brokers, partitions, ISR health and consumer lag.
//!
//! Not built yet: planned in the TUI issue, after the cluster. This crate exports nothing that
//! could be mistaken for a working component.
