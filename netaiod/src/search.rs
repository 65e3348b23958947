//! The peer search of `min_connections`: a daemon with fewer neighbours than that asks the
//! peers it knows (the gossip node's passive view, filled by its neighbours' shuffles, and the
//! configured peers) to take it, in random order, at most once per `search_cooldown`.

use std::net::SocketAddr;

use rand::Rng;
use rand::seq::SliceRandom;

/// The peers to join now: none when `neighbors` has `min` or more; otherwise up to the number
/// missing, drawn in random order from `known` that are neither neighbours nor this node.
pub fn peers_to_search<R: Rng>(
    me: SocketAddr,
    neighbors: &[SocketAddr],
    known: &[SocketAddr],
    min: usize,
    rng: &mut R,
) -> Vec<SocketAddr> {
    let missing = min.saturating_sub(neighbors.len());
    if missing == 0 {
        return Vec::new();
    }
    let mut candidates: Vec<SocketAddr> = known
        .iter()
        .copied()
        .filter(|p| *p != me && !neighbors.contains(p))
        .collect();
    candidates.sort();
    candidates.dedup();
    candidates.shuffle(rng);
    candidates.truncate(missing);
    candidates
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn searches_only_below_min_and_only_for_the_missing() {
        let mut rng = SmallRng::seed_from_u64(1);
        let known = [a(1), a(2), a(3), a(4), a(2)];
        assert!(peers_to_search(a(9), &[a(1), a(2)], &known, 2, &mut rng).is_empty());
        let picked = peers_to_search(a(9), &[a(1)], &known, 3, &mut rng);
        assert_eq!(picked.len(), 2);
        assert!(picked.iter().all(|p| [a(2), a(3), a(4)].contains(p)));
        assert_ne!(picked[0], picked[1], "no duplicates");
        // Never itself, nor a neighbour; fewer candidates than missing: all of them.
        assert_eq!(
            peers_to_search(a(9), &[a(1)], &[a(9), a(1), a(5)], 4, &mut rng),
            [a(5)]
        );
    }

    #[test]
    fn the_order_is_random() {
        let known: Vec<SocketAddr> = (1..=20).map(a).collect();
        let mut rng = SmallRng::seed_from_u64(7);
        let firsts: std::collections::HashSet<SocketAddr> = (0..20)
            .map(|_| peers_to_search(a(99), &[], &known, 1, &mut rng)[0])
            .collect();
        assert!(firsts.len() > 5, "{firsts:?}");
    }
}
