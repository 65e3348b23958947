//! [`SessionIds`]: the session id rules of RFC 8990 section 2.7.
//!
//! A new id is random (the caller passes the random numbers, so tests choose them), checked
//! against the ids in use and those used recently; an incoming request whose id is active
//! already is refused (section 2.8.6: "it MUST discard the Request message"). Both sets are
//! bounded.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

use super::GraspError;

/// Who opened a session: this node, or a peer at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// This node.
    Local,
    /// A peer (its address, or the initiator field of a multicast message).
    Remote(IpAddr),
}

/// The session ids in use and recently used.
#[derive(Debug)]
pub struct SessionIds {
    active: HashSet<(u32, Origin)>,
    active_ids: std::collections::HashMap<u32, usize>,
    recent: VecDeque<u32>,
    recent_set: HashSet<u32>,
    max_active: usize,
    max_recent: usize,
}

impl SessionIds {
    /// At most `max_active` sessions at once, and `max_recent` ids remembered after they end.
    pub fn new(max_active: usize, max_recent: usize) -> SessionIds {
        SessionIds {
            active: HashSet::new(),
            active_ids: std::collections::HashMap::new(),
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
            max_active,
            max_recent,
        }
    }

    /// A new local id from `candidates` (random numbers): the first neither active nor recent.
    /// `Unspec` when the table is full or every candidate clashes.
    pub fn allocate(
        &mut self,
        candidates: impl IntoIterator<Item = u32>,
    ) -> Result<u32, GraspError> {
        if self.active.len() >= self.max_active {
            return Err(GraspError::Unspec("session table full".into()));
        }
        for id in candidates {
            if !self.active_ids.contains_key(&id) && !self.recent_set.contains(&id) {
                self.insert(id, Origin::Local);
                return Ok(id);
            }
        }
        Err(GraspError::Unspec("no free session id".into()))
    }

    /// Record a peer's session. `IdClash` when `id` is active already, whoever opened it.
    pub fn accept_remote(&mut self, id: u32, peer: IpAddr) -> Result<(), GraspError> {
        if self.active_ids.contains_key(&id) {
            return Err(GraspError::IdClash);
        }
        if self.active.len() >= self.max_active {
            return Err(GraspError::Unspec("session table full".into()));
        }
        self.insert(id, Origin::Remote(peer));
        Ok(())
    }

    /// True when `id` is active.
    pub fn is_active(&self, id: u32) -> bool {
        self.active_ids.contains_key(&id)
    }

    /// The session ended: its id moves to the recent ones.
    pub fn release(&mut self, id: u32, origin: Origin) {
        if !self.active.remove(&(id, origin)) {
            return;
        }
        if let Some(n) = self.active_ids.get_mut(&id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active_ids.remove(&id);
            }
        }
        if self.recent_set.insert(id) {
            self.recent.push_back(id);
            while self.recent.len() > self.max_recent {
                if let Some(old) = self.recent.pop_front() {
                    self.recent_set.remove(&old);
                }
            }
        }
    }

    /// How many sessions are active.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    fn insert(&mut self, id: u32, origin: Origin) {
        if self.active.insert((id, origin)) {
            *self.active_ids.entry(id).or_insert(0) += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_id_skips_active_and_recent_ids() {
        let mut s = SessionIds::new(10, 10);
        assert_eq!(s.allocate([5]).ok(), Some(5));
        // 5 is active: the next candidate is taken.
        assert_eq!(s.allocate([5, 6]).ok(), Some(6));
        s.release(5, Origin::Local);
        assert!(!s.is_active(5));
        // 5 was used recently: still skipped.
        assert_eq!(s.allocate([5, 7]).ok(), Some(7));
        assert!(matches!(s.allocate([5, 6, 7]), Err(GraspError::Unspec(_))));
    }

    #[test]
    fn a_request_whose_session_id_is_active_is_refused() {
        let peer: IpAddr = "fd00::2".parse().unwrap();
        let other: IpAddr = "fd00::3".parse().unwrap();
        let mut s = SessionIds::new(10, 10);
        let mine = s.allocate([42]).unwrap();
        assert!(matches!(
            s.accept_remote(mine, peer),
            Err(GraspError::IdClash)
        ));
        s.accept_remote(9, peer).unwrap();
        // Active already, from whichever peer.
        assert!(matches!(
            s.accept_remote(9, other),
            Err(GraspError::IdClash)
        ));
        s.release(9, Origin::Remote(peer));
        s.accept_remote(9, other).unwrap();
    }

    #[test]
    fn the_tables_are_bounded() {
        let mut s = SessionIds::new(2, 3);
        s.allocate([1]).unwrap();
        s.allocate([2]).unwrap();
        assert!(matches!(s.allocate([3]), Err(GraspError::Unspec(_))));
        assert!(matches!(
            s.accept_remote(4, "fd00::2".parse().unwrap()),
            Err(GraspError::Unspec(_))
        ));
        for id in [1, 2] {
            s.release(id, Origin::Local);
        }
        for id in 10..20 {
            s.allocate([id]).unwrap();
            s.release(id, Origin::Local);
        }
        // Only the last three ids are remembered: 1 is usable again.
        assert_eq!(s.allocate([1]).ok(), Some(1));
        assert_eq!(s.active_count(), 1);
    }
}
