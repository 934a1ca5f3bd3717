//! The delay queue hands out exactly the items that are due, each once,
//! earliest first, however schedules and takes interleave.

use boxoffice_domain::DelayQueue;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Schedule { deadline: i64 },
    Take { now: i64, max: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0i64..1_000).prop_map(|deadline| Step::Schedule { deadline }),
        (0i64..1_000, 1usize..8).prop_map(|(now, max)| Step::Take { now, max }),
    ]
}

proptest! {
    #[test]
    fn takes_exactly_the_due_items_earliest_first(steps in proptest::collection::vec(step(), 1..200)) {
        let mut queue = DelayQueue::new();
        // The model: every scheduled (deadline, id) not yet taken.
        let mut pending: Vec<(i64, usize)> = Vec::new();
        let mut next_id = 0usize;
        for step in steps {
            match step {
                Step::Schedule { deadline } => {
                    queue.schedule(deadline, next_id);
                    pending.push((deadline, next_id));
                    next_id += 1;
                }
                Step::Take { now, max } => {
                    pending.sort();
                    let expected: Vec<usize> = pending
                        .iter()
                        .filter(|(deadline, _)| *deadline <= now)
                        .take(max)
                        .map(|(_, id)| *id)
                        .collect();
                    let taken = queue.take_due(now, max);
                    prop_assert_eq!(&taken, &expected);
                    pending.retain(|(_, id)| !taken.contains(id));
                }
            }
            prop_assert_eq!(queue.len(), pending.len());
            prop_assert_eq!(queue.next_deadline(), pending.iter().map(|(d, _)| *d).min());
        }
    }
}
