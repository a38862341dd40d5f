//! Unit tests of the pure coordinator core: effects of commits, retention and rebalances.
