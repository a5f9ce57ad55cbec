//! A binary-heap event queue keyed by a packed `(time, sequence)` u128.
//!
//! Heap entries are 16 bytes: time in the high 64 bits, then a 40-bit sequence number and
//! a 24-bit payload slot. Payloads live in a slab beside the heap, so the heap never moves
//! them. Same-time events pop in FIFO order of scheduling.

use crate::units::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u128 = (1 << SLOT_BITS) - 1;
const MAX_SEQ: u64 = (1 << 40) - 1;

/// Pending events of type `E`, popped in (time, FIFO) order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<u128>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
    now: SimTime,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            now: SimTime::ZERO,
            popped: 0,
        }
    }

    /// The time of the last popped event.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Number of events popped so far.
    pub fn events_processed(&self) -> u64 {
        self.popped
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at absolute time `at`.
    ///
    /// # Panics
    /// If `at` is before the current time (an engine invariant: no event in the past).
    pub fn schedule(&mut self, at: SimTime, event: E) {
        assert!(
            at >= self.now,
            "engine invariant broken: event scheduled in the past ({} < {})",
            at.as_ps(),
            self.now.as_ps()
        );
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(event);
                s
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        assert!(
            (slot as u128) <= SLOT_MASK,
            "engine invariant broken: more than 2^24 pending events"
        );
        assert!(self.seq < MAX_SEQ, "engine invariant broken: sequence overflow");
        let key = ((at.as_ps() as u128) << 64) | ((self.seq as u128) << SLOT_BITS) | slot as u128;
        self.seq += 1;
        self.heap.push(Reverse(key));
    }

    /// Schedules `event` `delay` after now.
    pub fn schedule_in(&mut self, delay: SimTime, event: E) {
        let at = self.now + delay;
        self.schedule(at, event);
    }

    /// Pops the earliest event and advances the clock to it.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse(key) = self.heap.pop()?;
        let at = SimTime((key >> 64) as u64);
        let slot = (key & SLOT_MASK) as u32;
        let event = self.slots[slot as usize]
            .take()
            .expect("engine invariant broken: empty event slot");
        self.free.push(slot);
        self.now = at;
        self.popped += 1;
        Some((at, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_with_fifo_ties() {
        let mut q = EventQueue::new();
        q.schedule(SimTime(30), "c");
        q.schedule(SimTime(10), "a1");
        q.schedule(SimTime(10), "a2");
        q.schedule(SimTime(20), "b");
        q.schedule(SimTime(10), "a3");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!["a1", "a2", "a3", "b", "c"]);
        assert_eq!(q.now(), SimTime(30));
        assert_eq!(q.events_processed(), 5);
    }

    #[test]
    fn reuses_slots_and_keeps_fifo_across_reuse() {
        let mut q = EventQueue::new();
        for i in 0..100u32 {
            q.schedule(SimTime(5), i);
        }
        for i in 0..50u32 {
            assert_eq!(q.pop().unwrap().1, i);
        }
        // these reuse the 50 freed slots but must still pop after 50..100
        for i in 100..150u32 {
            q.schedule(SimTime(5), i);
        }
        let rest: Vec<u32> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(rest, (50..150).collect::<Vec<_>>());
    }

    #[test]
    #[should_panic(expected = "engine invariant broken")]
    fn scheduling_in_the_past_is_an_invariant_violation() {
        let mut q = EventQueue::new();
        q.schedule(SimTime(10), ());
        q.pop();
        q.schedule(SimTime(5), ());
    }
}
