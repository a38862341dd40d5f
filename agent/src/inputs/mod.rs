//! Sources of events. Each input is a small component that produces [`crate::event`] values.
