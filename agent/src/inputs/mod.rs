//! Sources of events. Each input is a small component that produces [`crate::pipeline::Envelope`]s.

pub mod file;
