//! The fragments an **arq** flow sent and has not seen acknowledged, with the two
//! orders its retransmission rule reads, so that finding the next fragment due
//! (and when it falls due) costs a look at the front of each order instead of a
//! pass over every fragment in flight.
//!
//! The rule ([`Resend`]): a fragment goes again at its timeout, but no earlier
//! than `restart` (the timer counts from the last acknowledgement, RFC 6298
//! §5.3); or, once a fragment sent after it was acknowledged, a reordering
//! window after it was sent (RACK, RFC 8985), if that comes first. Over all
//! fragments the earliest is `min(max(least timeout, restart), least send time
//! acknowledged past + window)`: the front of the timeout order and of the
//! send-time order give it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redgiant_base::Instant;

use crate::wire::{Frag, Group};

/// A fragment waiting to be sent or acknowledged.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) seq: u32,
    pub(super) frag: Frag,
    /// A fragment of a parity shard of the group starting at `seq`.
    pub(super) parity: Option<Group>,
    pub(super) bytes: Vec<u8>,
    /// Times sent.
    pub(super) sends: u32,
    pub(super) sent_at: Instant,
    pub(super) deadline: Instant,
}

/// A fragment: SDU sequence number and fragment index.
pub(super) type Key = (u32, u16);

/// What the retransmission rule needs besides each fragment's own times.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resend {
    /// No timeout falls before this.
    pub(super) restart: Instant,
    /// The latest send time acknowledged, and the reordering window after a
    /// send before it.
    pub(super) rack: Option<(Instant, Duration)>,
}

impl Resend {
    /// When `o` goes again: the rule for one fragment, which [`InFlight::next_due`]
    /// answers for all of them at once.
    #[cfg(test)]
    pub(super) fn at(&self, o: &Outgoing) -> Instant {
        let timer = o.deadline.max(self.restart);
        match self.rack {
            Some((later, wait)) if later > o.sent_at => timer.min(o.sent_at + wait),
            _ => timer,
        }
    }
}

/// The fragments in flight.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    map: BTreeMap<Key, Outgoing>,
    by_deadline: BTreeSet<(Instant, Key)>,
    by_sent: BTreeSet<(Instant, Key)>,
}

impl InFlight {
    /// Fragments in flight.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// True if none is.
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every fragment in flight.
    pub(super) fn values(&self) -> impl Iterator<Item = &Outgoing> {
        self.map.values()
    }

    /// The fragment `key`.
    pub(super) fn get(&self, key: &Key) -> Option<&Outgoing> {
        self.map.get(key)
    }

    /// Records `o` as sent (replacing an earlier send of the same fragment).
    pub(super) fn insert(&mut self, o: Outgoing) {
        let key = (o.seq, o.frag.index);
        self.remove(&key);
        self.by_deadline.insert((o.deadline, key));
        self.by_sent.insert((o.sent_at, key));
        self.map.insert(key, o);
    }

    /// Takes fragment `key` out of flight.
    pub(super) fn remove(&mut self, key: &Key) -> Option<Outgoing> {
        let o = self.map.remove(key)?;
        self.forget(&o, *key);
        Some(o)
    }

    fn forget(&mut self, o: &Outgoing, key: Key) {
        self.by_deadline.remove(&(o.deadline, key));
        self.by_sent.remove(&(o.sent_at, key));
    }

    /// Forgets every fragment.
    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.by_deadline.clear();
        self.by_sent.clear();
    }

    /// The earliest time `rule` sends a fragment again, and that fragment (the
    /// least key among those due then): what a pass over every fragment taking
    /// the least `(rule.at(o), key)` finds.
    pub(super) fn next_due(&self, rule: &Resend) -> Option<(Instant, Key)> {
        let &(least_deadline, _) = self.by_deadline.first()?;
        let by_timer = least_deadline.max(rule.restart);
        let by_rack = rule.rack.and_then(|(later, wait)| {
            let &(sent, key) = self.by_sent.first()?;
            (later > sent).then_some((sent + wait, key))
        });
        let due = by_rack.map_or(by_timer, |(t, _)| t.min(by_timer));
        let mut key = None;
        if by_timer == due {
            // Every fragment whose timeout is at most `due` goes at `due` (those
            // before `restart` are held to it): the least key among them.
            key = self
                .by_deadline
                .range(..=(due, (u32::MAX, u16::MAX)))
                .map(|&(_, k)| k)
                .min();
        }
        if let Some((_, k)) = by_rack.filter(|&(t, _)| t == due) {
            // The earliest sent (least key among equal times) is the first due by RACK.
            key = Some(key.map_or(k, |x: Key| x.min(k)));
        }
        Some((due, key?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn outgoing(seq: u32, index: u16, sent_at: u64, deadline: u64) -> Outgoing {
        Outgoing {
            seq,
            frag: Frag { index, count: 4 },
            parity: None,
            bytes: Vec::new(),
            sends: 1,
            sent_at: Instant::from_millis(sent_at),
            deadline: Instant::from_millis(deadline),
        }
    }

    /// The pass over every fragment this replaces.
    fn scan(f: &InFlight, rule: &Resend) -> Option<(Instant, Key)> {
        f.values()
            .map(|o| (rule.at(o), (o.seq, o.frag.index)))
            .min()
    }

    proptest! {
        #[test]
        fn the_next_fragment_due_is_the_one_a_full_pass_finds(
            // Few distinct times, so that ties (the usual case in virtual time) abound.
            sends in prop::collection::vec((0u32..40, 0u16..3, 0u64..12, 0u64..30), 0..60),
            removals in prop::collection::vec((0u32..40, 0u16..3), 0..20),
            restart in 0u64..35,
            rack in prop::option::of((0u64..14, 0u64..8)),
        ) {
            let mut f = InFlight::default();
            for &(seq, index, sent, after) in &sends {
                f.insert(outgoing(seq, index, sent, sent + after));
            }
            for k in &removals {
                f.remove(k);
            }
            prop_assert_eq!(f.by_deadline.len(), f.len());
            prop_assert_eq!(f.by_sent.len(), f.len());
            let rule = Resend {
                restart: Instant::from_millis(restart),
                rack: rack.map(|(later, wait)| {
                    (Instant::from_millis(later), Duration::from_millis(wait))
                }),
            };
            prop_assert_eq!(f.next_due(&rule), scan(&f, &rule));
        }
    }

    #[test]
    fn a_fragment_sent_again_is_due_by_its_new_times_only() {
        let mut f = InFlight::default();
        f.insert(outgoing(1, 0, 0, 10));
        f.insert(outgoing(2, 0, 1, 11));
        // Fragment 1 goes again at 5, due at 25.
        f.insert(outgoing(1, 0, 5, 25));
        assert_eq!(f.len(), 2);
        let rule = Resend {
            restart: Instant::ZERO,
            rack: None,
        };
        assert_eq!(f.next_due(&rule), Some((Instant::from_millis(11), (2, 0))));
        f.remove(&(2, 0));
        assert_eq!(f.next_due(&rule), Some((Instant::from_millis(25), (1, 0))));
        f.remove(&(1, 0));
        assert!(f.is_empty() && f.by_deadline.is_empty() && f.by_sent.is_empty());
        assert_eq!(f.next_due(&rule), None);
    }
}
