//! [`Entry`]: one group as the coordinator core keeps it, its membership with its offsets.

use super::state::Group;
use super::store::StoredOffset;
use std::collections::HashMap;

/// A group with its offsets.
pub(super) struct Entry {
    pub(super) group: Group,
    pub(super) offsets: HashMap<(String, i32), StoredOffset>,
    /// Wall-clock ms when the group last became empty.
    pub(super) empty_since: Option<i64>,
}

impl Entry {
    pub(super) fn new(id: &str) -> Entry {
        Entry { group: Group::new(id), offsets: HashMap::new(), empty_since: None }
    }
}
