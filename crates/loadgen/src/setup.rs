//! Setting the stage through the public API as an admin: the venue layout of
//! N places, an event, shows, and the buyers (registered up front).

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::client::{Call, Http};
use crate::progress::Progress;
use crate::LoadtestError;

/// Seats per row and rows per section of the generated venues: well inside
/// the server's layout limits (≤ 1000 seats a row, ≤ 500 rows a section).
pub const SEATS_PER_ROW: u32 = 50;
pub const ROWS_PER_SECTION: u32 = 50;
/// The server's limit of sections per venue.
pub const SECTIONS_MAX: u32 = 200;
/// The standing floor holds this share of the venue's places (1/10).
const STANDING_SHARE_DIVISOR: u32 = 10;
/// The first sections are `premium`, the rest `standard`, the floor `ga`.
const PREMIUM_SECTIONS: u32 = 2;
pub const STANDING_SECTION: &str = "FLOOR";
/// Registration hashes a password (Argon2, about 19 MiB and tens of
/// milliseconds each): more at once than the server's cores only costs memory.
const REGISTER_CONCURRENCY: usize = 8;
/// High enough that the per-user limit never decides a sale (the server
/// accepts at most 1000).
const MAX_TICKETS_PER_USER: u32 = 1_000;
const HOLD_TTL_SECONDS: u32 = 600;
const USER_PASSWORD: &str = "loadtest-password";
const CURRENCY: &str = "EUR";

/// The seats of a generated venue, in the server's "best" order (sections
/// in layout order, rows in layout order).
#[derive(Debug, Clone)]
pub struct VenuePlan {
    /// Each seated row: its seat IDs, in number order.
    pub rows: Vec<Vec<String>>,
    pub standing_capacity: u32,
    /// The price categories the layout uses (a show must price each one,
    /// and no other).
    pub categories: Vec<&'static str>,
    layout: Value,
}

impl VenuePlan {
    /// `places` in all: a tenth on a standing floor (when `with_floor`), the
    /// rest in sections of 50 rows of 50 seats (the last row may be shorter).
    pub fn new(name: &str, places: u32, with_floor: bool) -> VenuePlan {
        let standing_capacity = if with_floor {
            places / STANDING_SHARE_DIVISOR
        } else {
            0
        };
        let seated = places - standing_capacity;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut sections: Vec<Value> = Vec::new();
        let mut left = seated;
        let mut section_number = 0;
        let mut categories: Vec<&'static str> = Vec::new();
        while left > 0 && section_number < SECTIONS_MAX {
            section_number += 1;
            let section_id = format!("S{section_number}");
            let mut section_rows = Vec::new();
            for row in 1..=ROWS_PER_SECTION {
                if left == 0 {
                    break;
                }
                let seats = left.min(SEATS_PER_ROW);
                left -= seats;
                section_rows.push(json!({"label": row.to_string(), "seats": seats}));
                rows.push(
                    (1..=seats)
                        .map(|number| format!("{section_id}-{row}-{number}"))
                        .collect(),
                );
            }
            let category = if section_number <= PREMIUM_SECTIONS {
                "premium"
            } else {
                "standard"
            };
            if !categories.contains(&category) {
                categories.push(category);
            }
            sections.push(json!({
                "id": section_id, "name": format!("Block {section_number}"),
                "kind": "seated", "category": category, "rows": section_rows,
            }));
        }
        if standing_capacity > 0 {
            categories.push("ga");
            sections.push(json!({
                "id": STANDING_SECTION, "name": "Floor", "kind": "standing",
                "category": "ga", "capacity": standing_capacity,
            }));
        }
        let layout = json!({
            "name": name, "city": "Loadtown", "address": "Benchmark Road 1",
            "timezone": "UTC", "sections": sections,
        });
        VenuePlan {
            rows,
            standing_capacity,
            categories,
            layout,
        }
    }

    pub fn seated(&self) -> u64 {
        self.rows.iter().map(|row| row.len() as u64).sum()
    }

    pub fn places(&self) -> u64 {
        self.seated() + u64::from(self.standing_capacity)
    }

    pub fn floor(&self) -> Option<&'static str> {
        (self.standing_capacity > 0).then_some(STANDING_SECTION)
    }
}

/// The admin's token and the HTTP handle: what setup requests need.
pub struct Admin {
    pub http: Http,
    pub token: String,
}

impl Admin {
    pub async fn login(http: &Http, email: &str, password: &str) -> Result<Admin, LoadtestError> {
        let body = json!({"email": email, "password": password});
        let answer = expect(
            http,
            Call::post("/v1/auth/login", &body),
            200,
            "log in as admin",
        )
        .await?;
        let token = string_field(&answer, "access_token", "log in as admin")?;
        Ok(Admin {
            http: http.clone(),
            token,
        })
    }

    async fn create(&self, path: &str, body: &Value, what: &str) -> Result<String, LoadtestError> {
        let answer = expect(
            &self.http,
            Call::post(path, body).token(&self.token),
            201,
            what,
        )
        .await?;
        string_field(&answer, "id", what)
    }

    pub async fn create_venue(&self, plan: &VenuePlan) -> Result<String, LoadtestError> {
        self.create("/v1/venues", &plan.layout, "create the venue")
            .await
    }

    pub async fn create_event(&self, title: &str) -> Result<String, LoadtestError> {
        let body = json!({
            "title": title, "description": "Generated by boxoffice loadtest.",
            "performer": "The Load Generators", "genre": "benchmark", "tags": ["loadtest"],
        });
        self.create("/v1/events", &body, "create the event").await
    }

    /// A show on sale now, with a price for every category of the generated
    /// venues, holds of 10 minutes and a per-user limit that never decides.
    pub async fn create_show(
        &self,
        event_id: &str,
        venue_id: &str,
        plan: &VenuePlan,
        days_ahead: i64,
    ) -> Result<String, LoadtestError> {
        self.create_show_with(event_id, venue_id, plan, days_ahead, json!({}))
            .await
    }

    /// The same, with `extra` fields of the show's body (`sales_start`,
    /// `waiting_room`, …) added or replaced.
    pub async fn create_show_with(
        &self,
        event_id: &str,
        venue_id: &str,
        plan: &VenuePlan,
        days_ahead: i64,
        extra: Value,
    ) -> Result<String, LoadtestError> {
        let starts_at = (chrono::Utc::now() + chrono::Duration::days(days_ahead))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let prices: serde_json::Map<String, Value> = plan
            .categories
            .iter()
            .map(|category| {
                let amount = match *category {
                    "premium" => 15_000,
                    "standard" => 8_000,
                    _ => 6_000,
                };
                (
                    category.to_string(),
                    json!({"amount": amount, "currency": CURRENCY}),
                )
            })
            .collect();
        let mut body = json!({
            "venue_id": venue_id, "starts_at": starts_at, "prices": prices,
            "hold_ttl_seconds": HOLD_TTL_SECONDS, "max_tickets_per_user": MAX_TICKETS_PER_USER,
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.create(
            &format!("/v1/events/{event_id}/shows"),
            &body,
            "create a show",
        )
        .await
    }
}

/// Registers `count` buyers and returns their access tokens.
pub async fn register_users(
    http: &Http,
    count: u32,
    run_id: u64,
    progress: Progress,
) -> Result<Arc<Vec<String>>, LoadtestError> {
    let bar = progress.bar("registering users", u64::from(count));
    let results: Vec<Result<String, LoadtestError>> = stream::iter(0..count)
        .map(|index| {
            let http = http.clone();
            let bar = bar.clone();
            async move {
                let body = json!({
                    "email": format!("buyer-{run_id:x}-{index}@loadtest.boxoffice.test"),
                    "password": USER_PASSWORD, "name": format!("Buyer {index}"),
                });
                let answer = expect(
                    &http,
                    Call::post("/v1/auth/register", &body),
                    201,
                    "register a buyer",
                )
                .await?;
                bar.inc(1);
                string_field(&answer, "access_token", "register a buyer")
            }
        })
        .buffer_unordered(REGISTER_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    let tokens = results.into_iter().collect::<Result<Vec<String>, _>>()?;
    Ok(Arc::new(tokens))
}

/// Sends a setup request and insists on `status`.
async fn expect(
    http: &Http,
    call: Call<'_>,
    status: u16,
    what: &str,
) -> Result<Value, LoadtestError> {
    let answer = http
        .send(http.next_node(), call)
        .await
        .map_err(|error| LoadtestError::Setup(format!("{what}: {}", error.message)))?;
    if answer.status.as_u16() != status {
        return Err(LoadtestError::Setup(format!(
            "{what}: expected {status}, got {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(500)])
        )));
    }
    answer
        .json()
        .ok_or_else(|| LoadtestError::Setup(format!("{what}: the answer is not JSON")))
}

fn string_field(body: &Value, field: &str, what: &str) -> Result<String, LoadtestError> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| LoadtestError::Setup(format!("{what}: the answer has no {field}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_thousand_places_fit_the_server_limits() {
        let plan = VenuePlan::new("x", 50_000, true);
        assert_eq!(plan.standing_capacity, 5_000);
        assert_eq!(plan.seated(), 45_000);
        assert_eq!(plan.places(), 50_000);
        let sections = plan.layout["sections"].as_array().map(Vec::len);
        assert_eq!(sections, Some(18 + 1));
        assert_eq!(plan.rows[0][0], "S1-1-1");
        assert_eq!(plan.rows[50][0], "S2-1-1");
    }

    #[test]
    fn odd_sizes_end_with_a_short_row() {
        let plan = VenuePlan::new("x", 200, true);
        assert_eq!(plan.standing_capacity, 20);
        assert_eq!(plan.rows.len(), 4);
        assert_eq!(plan.rows[3].len(), 30);
        let plan = VenuePlan::new("x", 5_000, false);
        assert_eq!(plan.standing_capacity, 0);
        assert_eq!(plan.seated(), 5_000);
        assert!(plan.floor().is_none());
        assert_eq!(plan.categories, vec!["premium"]);
        let plan = VenuePlan::new("x", 10_000, true);
        assert_eq!(plan.categories, vec!["premium", "standard", "ga"]);
        assert_eq!(VenuePlan::new("x", 100, false).categories, vec!["premium"]);
    }
}
