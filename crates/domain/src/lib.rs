//! The pure rules of boxoffice: identifiers, money, venue layouts and seat
//! IDs, hold requests, best-available seat selection, the inventory state
//! machine of one show, and signed ticket codes.
//!
//! Nothing here does I/O, reads the clock or draws random numbers: time and
//! entropy are always parameters. That keeps every rule testable with plain
//! unit and property tests, and lets the store, services and http crates
//! share one definition of each rule.
//!
//! # Layout
//!
//! - [`ids`]: prefixed, time-ordered IDs (`usr_…`, `shw_…`, `hld_…`).
//! - [`money`]: [`Currency`] and [`Money`] in integer minor units.
//! - [`seat`]: labels and [`SeatId`] (`{section}-{row}-{number}`).
//! - [`text`]: rules for free text and category names.
//! - [`field_error`]: [`FieldError`], the per-field validation message.
//! - [`layout`]: venue input, its validation, and the validated [`VenueLayout`].
//! - [`mod@best_available`]: picking adjacent seats for a best-available hold.
//! - [`delay_queue`]: [`DelayQueue`], the per-node timer that expires holds.
//! - [`hold`]: parsing a hold request into a [`HoldSelection`].
//! - [`rate_limit`]: the GCRA arithmetic of rate limits ([`gcra_acquire`]).
//! - [`inventory`]: [`ShowInventory`], the all-or-nothing hold model of one show.
//! - [`status`]: the status enums shared by every layer.
//! - [`ticket`]: signing and verifying ticket codes offline.
//! - [`waiting_room`]: the admission arithmetic of a show's virtual queue.

pub mod batch;
pub mod best_available;
pub mod delay_queue;
pub mod field_error;
pub mod hold;
pub mod ids;
pub mod inventory;
pub mod layout;
pub mod money;
pub mod rate_limit;
pub mod seat;
pub mod status;
pub mod text;
pub mod ticket;
mod ulid;
pub mod waiting_room;

pub use batch::{decide_batch, BatchDecision, BatchRequest, BatchState};
pub use best_available::{best_available, best_available_at};
pub use delay_queue::DelayQueue;
pub use field_error::*;
pub use hold::*;
pub use ids::*;
pub use inventory::*;
pub use layout::*;
pub use money::*;
pub use rate_limit::{gcra_acquire, gcra_release, GcraDecision, GcraParams, GcraParamsError};
pub use seat::*;
pub use status::*;
pub use text::*;
pub use ticket::*;
