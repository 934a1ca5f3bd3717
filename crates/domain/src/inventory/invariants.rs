//! Checking DESIGN.md invariants 1, 2 and 6 against a from-scratch recount
//! of the hold records, and the bookkeeping that the fast paths rely on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::types::Phase;
use super::ShowInventory;
use crate::ids::UserId;

impl ShowInventory {
    /// `Err` with a description of the first broken rule:
    /// 1. a seat belongs to at most one live hold or booking;
    /// 2. standing sections never pass their capacity;
    /// 6. no user passes `max_tickets_per_user`.
    ///
    /// Holds past `expires_at` that were not swept yet still count as
    /// owning their places here, which is stricter than "live at `now`";
    /// `now` is used for the literal per-user check of invariant 6.
    pub fn check_invariants(&self, now: DateTime<Utc>) -> Result<(), String> {
        self.check_seats()?;
        self.check_standing()?;
        self.check_users(now)?;
        self.check_expiry_queue()
    }

    /// Invariant 1, and that `seat_owner` agrees with the hold records.
    fn check_seats(&self) -> Result<(), String> {
        let mut claims = vec![0_u32; self.seat_ids.len()];
        for (hold_id, record) in &self.holds {
            let owns = matches!(record.phase, Phase::Held | Phase::Booked);
            for &seat in &record.seats {
                let owner = self
                    .seat_owner
                    .get(seat)
                    .ok_or(format!("{hold_id} has an unknown seat index {seat}"))?;
                if owns {
                    *claims.get_mut(seat).ok_or("claims out of range")? += 1;
                    if owner.as_ref() != Some(hold_id) {
                        return Err(format!(
                            "seat {} is held by {hold_id} but owned by {owner:?}",
                            self.seat_name(seat)
                        ));
                    }
                } else if owner.as_ref() == Some(hold_id) {
                    return Err(format!(
                        "ended hold {hold_id} still owns seat {}",
                        self.seat_name(seat)
                    ));
                }
            }
        }
        for (seat, (count, owner)) in claims.iter().zip(&self.seat_owner).enumerate() {
            if *count > 1 {
                return Err(format!(
                    "seat {} belongs to {count} holds",
                    self.seat_name(seat)
                ));
            }
            if *count == 0 && owner.is_some() {
                return Err(format!(
                    "seat {} is owned by {owner:?}, which does not hold it",
                    self.seat_name(seat)
                ));
            }
        }
        Ok(())
    }

    fn seat_name(&self, seat: usize) -> String {
        self.seat_ids
            .get(seat)
            .map_or_else(|| format!("#{seat}"), ToString::to_string)
    }

    /// Invariant 2, and that each pool's `taken` matches the holds.
    fn check_standing(&self) -> Result<(), String> {
        let mut taken = vec![0_u64; self.pools.len()];
        for record in self.holds.values() {
            if matches!(record.phase, Phase::Held | Phase::Booked) {
                for &(pool, quantity) in &record.standing {
                    *taken.get_mut(pool).ok_or("unknown pool index")? += u64::from(quantity);
                }
            }
        }
        for (pool, counted) in self.pools.iter().zip(taken) {
            if counted > u64::from(pool.capacity) {
                return Err(format!(
                    "section {} has {counted} places taken of {}",
                    pool.section, pool.capacity
                ));
            }
            if counted != u64::from(pool.taken) {
                return Err(format!(
                    "section {} counts {} taken, holds say {counted}",
                    pool.section, pool.taken
                ));
            }
        }
        Ok(())
    }

    /// Invariant 6, and that `places_by_user` matches the holds.
    fn check_users(&self, now: DateTime<Utc>) -> Result<(), String> {
        let mut owned: HashMap<&UserId, u64> = HashMap::new();
        let mut live: HashMap<&UserId, u64> = HashMap::new();
        for record in self.holds.values() {
            if matches!(record.phase, Phase::Held | Phase::Booked) {
                *owned.entry(&record.user).or_insert(0) += u64::from(record.place_count());
            }
            if record.is_live(now) {
                *live.entry(&record.user).or_insert(0) += u64::from(record.place_count());
            }
        }
        let limit = u64::from(self.max_tickets_per_user);
        for (user, count) in owned.iter().chain(&live) {
            if *count > limit {
                return Err(format!(
                    "user {user} has {count} places, the limit is {limit}"
                ));
            }
        }
        let counted_users = owned.values().filter(|count| **count > 0).count();
        if counted_users != self.places_by_user.len() {
            return Err(format!(
                "{} users have places, {} are counted",
                counted_users,
                self.places_by_user.len()
            ));
        }
        for (user, count) in &owned {
            let recorded = u64::from(self.user_places(user));
            if recorded != *count {
                return Err(format!(
                    "user {user} is counted with {recorded} places, holds say {count}"
                ));
            }
        }
        Ok(())
    }

    /// Exactly the held holds are queued for expiry, at their `expires_at`.
    fn check_expiry_queue(&self) -> Result<(), String> {
        let held = self
            .holds
            .values()
            .filter(|record| record.phase == Phase::Held)
            .count();
        if held != self.expiry_queue.len() {
            return Err(format!(
                "{held} holds are held but {} are queued to expire",
                self.expiry_queue.len()
            ));
        }
        for (expires_at, hold_id) in &self.expiry_queue {
            match self.holds.get(hold_id) {
                Some(record) if record.phase == Phase::Held && record.expires_at == *expires_at => {
                }
                _ => {
                    return Err(format!(
                        "{hold_id} is queued to expire but is not held until {expires_at}"
                    ))
                }
            }
        }
        Ok(())
    }
}
