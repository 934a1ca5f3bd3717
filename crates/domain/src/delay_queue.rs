//! A delay queue: items with a deadline, taken out once their deadline has
//! passed, earliest first (DESIGN.md "The hot path", 5: holds are expired by
//! a timer per node, not by scanning the table).
//!
//! A binary heap rather than a timer wheel: a node holds at most a few
//! hundred thousand live holds, `O(log n)` per hold is far below the cost of
//! the hold's transaction, and the heap needs no tick granularity.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Deadlines are milliseconds since the Unix epoch (the caller's clock).
#[derive(Debug, Clone)]
pub struct DelayQueue<T: Ord> {
    heap: BinaryHeap<Reverse<(i64, T)>>,
}

impl<T: Ord> Default for DelayQueue<T> {
    fn default() -> Self {
        DelayQueue {
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord> DelayQueue<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `item`, due at `deadline_ms`. An item may be scheduled more than
    /// once; the consumer must treat a repeat as harmless.
    pub fn schedule(&mut self, deadline_ms: i64, item: T) {
        self.heap.push(Reverse((deadline_ms, item)));
    }

    /// The earliest deadline, if any item is queued.
    pub fn next_deadline(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    /// Removes and returns up to `max` items whose deadline is `<= now_ms`,
    /// earliest first.
    pub fn take_due(&mut self, now_ms: i64, max: usize) -> Vec<T> {
        let mut due = Vec::new();
        while due.len() < max {
            match self.heap.peek() {
                Some(Reverse((deadline, _))) if *deadline <= now_ms => {}
                _ => break,
            }
            if let Some(Reverse((_, item))) = self.heap.pop() {
                due.push(item);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::DelayQueue;

    #[test]
    fn nothing_is_due_before_its_deadline() {
        let mut queue = DelayQueue::new();
        queue.schedule(1_000, "a");
        assert_eq!(queue.take_due(999, 10), Vec::<&str>::new());
        assert_eq!(queue.next_deadline(), Some(1_000));
        assert_eq!(queue.take_due(1_000, 10), vec!["a"]);
        assert!(queue.is_empty());
        assert_eq!(queue.next_deadline(), None);
    }

    #[test]
    fn due_items_come_earliest_first_and_at_most_max() {
        let mut queue = DelayQueue::new();
        for (deadline, item) in [(30, "c"), (10, "a"), (50, "e"), (20, "b"), (40, "d")] {
            queue.schedule(deadline, item);
        }
        assert_eq!(queue.take_due(45, 3), vec!["a", "b", "c"]);
        assert_eq!(queue.take_due(45, 3), vec!["d"]);
        assert_eq!(queue.len(), 1);
    }
}
