//! Replica placement for new partitions: round-robin over the live brokers, as Kafka's
//! rack-unaware assignment does, so leaders (first replicas) and followers spread evenly.

use crate::controller::PartitionAssignment;

/// Assigns `count` new partitions (numbered from `first_index`) of replication factor
/// `replication_factor` over `brokers` (sorted ids). `seed` picks where the round-robin starts
/// (derived from the topic name, so different topics do not all start on the same broker).
pub fn assign(
    brokers: &[i32],
    first_index: i32,
    count: i32,
    replication_factor: usize,
    seed: usize,
) -> Result<Vec<PartitionAssignment>, String> {
    if replication_factor == 0 {
        return Err("replication factor must be at least 1".into());
    }
    if replication_factor > brokers.len() {
        return Err(format!(
            "replication factor {replication_factor} is larger than the {} available broker(s)",
            brokers.len()
        ));
    }
    let n = brokers.len();
    // Kafka also shifts followers per round so that a broker's followers are spread over
    // several other brokers; `shift` does that.
    Ok((first_index..first_index + count)
        .map(|p| {
            let p = p as usize;
            let first = (seed + p) % n;
            let shift = 1 + (p / n) % (n - 1).max(1);
            let mut replicas = vec![brokers[first]];
            let mut k = 0;
            while replicas.len() < replication_factor {
                let candidate = brokers[(first + shift + k) % n];
                if !replicas.contains(&candidate) {
                    replicas.push(candidate);
                }
                k += 1;
            }
            PartitionAssignment { replicas }
        })
        .collect())
}

/// A stable seed from a topic name.
pub fn seed(name: &str) -> usize {
    name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spreads_leaders_and_respects_factor() {
        let brokers = [1, 2, 3];
        let a = assign(&brokers, 0, 6, 3, 0).unwrap();
        assert_eq!(a.len(), 6);
        for p in &a {
            assert_eq!(p.replicas.len(), 3);
            let mut sorted = p.replicas.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "{:?}", p.replicas);
        }
        let leaders: Vec<i32> = a.iter().map(|p| p.replicas[0]).collect();
        for b in brokers {
            assert_eq!(leaders.iter().filter(|&&l| l == b).count(), 2, "{leaders:?}");
        }
        assert!(assign(&brokers, 0, 1, 4, 0).is_err());
        assert_eq!(assign(&[7], 0, 2, 1, 5).unwrap()[1].replicas, vec![7]);
    }
}
