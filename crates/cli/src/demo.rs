//! Demo data: two venues, five events and their shows, so that a newcomer
//! running `boxoffice serve --demo` sees a working system at once.
//!
//! Everything is created through the services as an admin, exactly as an
//! organizer would through the API, so the demo exercises the real
//! validation. It is loaded once per database: the first process to store
//! the `demo_loaded` setting loads it, every later start skips it.

use anyhow::Context;
use boxoffice_services::{AuthUser, Services};
use chrono::{DateTime, Days, NaiveTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};

use crate::config::DemoArgs;
use crate::{build_services, connect_store, ensure_admin};

/// The setting whose presence means the demo data is (being) loaded.
const DEMO_MARKER_SETTING: &str = "demo_loaded";
/// The demo admin's password, generated once and kept so that every start
/// can print it. Demo databases only: real deployments set
/// `BOXOFFICE_ADMIN_EMAIL` and `BOXOFFICE_ADMIN_PASSWORD`.
const DEMO_ADMIN_PASSWORD_SETTING: &str = "demo_admin_password";
pub const DEMO_ADMIN_EMAIL: &str = "admin@boxoffice.local";
const DEMO_ADMIN_PASSWORD_LENGTH: usize = 20;
const CURRENCY: &str = "EUR";

/// `boxoffice demo`: load the demo data into the database without serving.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let store = connect_store(&args.services.database).await?;
    let services = build_services(store.clone(), &args.services, None, Default::default()).await?;
    let admin = match (&args.admin.admin_email, &args.admin.admin_password) {
        (Some(email), Some(password)) => ensure_admin(&services, email, password.expose()).await?,
        _ => ensure_demo_admin(&services).await?,
    };
    match load_once(&services, &admin).await? {
        Some(summary) => {
            summary.print("http://127.0.0.1:8080");
            println!("demo data loaded");
        }
        None => println!("demo data was loaded before; nothing to do"),
    }
    store.close().await;
    Ok(())
}

/// Creates `admin@boxoffice.local` with a generated password unless it
/// exists, and prints its credentials to stderr.
pub async fn ensure_demo_admin(services: &Services) -> anyhow::Result<AuthUser> {
    let fresh_password =
        Alphanumeric.sample_string(&mut rand::thread_rng(), DEMO_ADMIN_PASSWORD_LENGTH);
    let password = services
        .store
        .setting_get_or_insert(DEMO_ADMIN_PASSWORD_SETTING, &fresh_password)
        .await
        .context("cannot store the demo admin password")?;
    let admin = ensure_admin(services, DEMO_ADMIN_EMAIL, &password).await?;
    eprintln!();
    eprintln!("  demo admin: {DEMO_ADMIN_EMAIL}  password: {password}");
    eprintln!(
        "  (set BOXOFFICE_ADMIN_EMAIL and BOXOFFICE_ADMIN_PASSWORD to use your own admin instead)"
    );
    eprintln!();
    Ok(admin)
}

/// Loads the demo data unless this database has it already; returns what it
/// created (to print once the server's address is known).
pub async fn load_once(
    services: &Services,
    admin: &AuthUser,
) -> anyhow::Result<Option<DemoSummary>> {
    let marker = format!(
        "{}-{}",
        Utc::now().to_rfc3339(),
        Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
    );
    let stored = services
        .store
        .setting_get_or_insert(DEMO_MARKER_SETTING, &marker)
        .await
        .context("cannot read the demo marker")?;
    if stored != marker {
        tracing::info!("demo data was loaded before; skipping (list it with GET /v1/events)");
        return Ok(None);
    }
    let summary = load(services, admin, Utc::now()).await.context(
        "loading the demo data failed half-way; start again on a fresh database to get the whole demo",
    )?;
    Ok(Some(summary))
}

/// What was created, for the summary printed at start.
pub struct DemoSummary {
    venues: Vec<(String, String)>,
    events: Vec<CreatedEvent>,
}

struct CreatedEvent {
    id: String,
    title: String,
    shows: Vec<(String, String, String)>,
}

impl DemoSummary {
    /// Prints the IDs and two sample requests against `base_url` to stderr.
    pub fn print(&self, base_url: &str) {
        eprintln!();
        eprintln!("  demo data loaded:");
        for (id, name) in &self.venues {
            eprintln!("    venue {id}  {name}");
        }
        for event in &self.events {
            eprintln!("    event {}  {}", event.id, event.title);
            for (show_id, starts_at, venue) in &event.shows {
                eprintln!("      show {show_id}  {starts_at}  at {venue}");
            }
        }
        if let Some((show_id, _, _)) = self.events.first().and_then(|event| event.shows.first()) {
            eprintln!("  try:");
            eprintln!("    curl -s {base_url}/v1/events | jq '.items[] | {{id, title}}'");
            eprintln!("    curl -s {base_url}/v1/shows/{show_id}/seats | jq .summary");
        }
        eprintln!();
    }
}

/// A seated section whose rows get wider toward the back, as in a real hall.
fn seated(
    id: &str,
    name: &str,
    category: &str,
    rows: &[&str],
    first_row_seats: i64,
    growth: i64,
) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .zip(0..)
        .map(|(label, index)| json!({"label": label, "seats": first_row_seats + growth * index}))
        .collect();
    json!({"id": id, "name": name, "kind": "seated", "category": category, "rows": rows})
}

fn standing(id: &str, name: &str, capacity: i64) -> Value {
    json!({"id": id, "name": name, "kind": "standing", "category": "ga", "capacity": capacity})
}

fn labels(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|number| number.to_string()).collect()
}

/// The Berlin theatre: 2,022 seats (stalls 846, circle 564, balcony 612)
/// plus 300 standing places behind the stalls.
fn theatre() -> Value {
    let stall_rows = labels(1..=18);
    let stall_rows: Vec<&str> = stall_rows.iter().map(String::as_str).collect();
    let letters = ["A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M"];
    json!({
        "name": "Spreeufer Theater",
        "city": "Berlin",
        "address": "Am Spreeufer 12, 10178 Berlin",
        "timezone": "Europe/Berlin",
        "sections": [
            seated("STALLS", "Stalls", "premium", &stall_rows, 30, 2),
            seated("CIRCLE", "Dress Circle", "standard", &letters, 36, 2),
            seated("BALCONY", "Balcony", "budget", &letters, 40, 2),
            standing("STANDING", "Standing (back of the stalls)", 300),
        ],
    })
}

/// The Hamburg club: a standing floor and a small seated gallery.
fn club() -> Value {
    json!({
        "name": "Hafenkantine",
        "city": "Hamburg",
        "address": "Grosse Elbstrasse 84, 22767 Hamburg",
        "timezone": "Europe/Berlin",
        "sections": [
            standing("FLOOR", "Dance floor", 400),
            seated("GALLERY", "Gallery", "standard", &["A", "B", "C", "D"], 18, 2),
        ],
    })
}

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": CURRENCY})
}

/// 19:00 UTC (20:00 in Berlin in winter) `days` days from `now`.
fn evening(now: DateTime<Utc>, days: u64) -> DateTime<Utc> {
    let date = now.date_naive() + Days::new(days);
    date.and_time(NaiveTime::from_hms_opt(19, 0, 0).unwrap_or_default())
        .and_utc()
}

struct EventSpec {
    event: Value,
    /// (venue index, days from now, prices by category)
    shows: Vec<(usize, u64, Value)>,
}

fn theatre_prices(premium: i64, standard: i64, budget: i64, ga: i64) -> Value {
    json!({"premium": eur(premium), "standard": eur(standard), "budget": eur(budget), "ga": eur(ga)})
}

fn club_prices(standard: i64, ga: i64) -> Value {
    json!({"standard": eur(standard), "ga": eur(ga)})
}

fn event_specs() -> Vec<EventSpec> {
    const THEATRE: usize = 0;
    const CLUB: usize = 1;
    vec![
        EventSpec {
            event: json!({
                "title": "Echoes of the Spree",
                "description": "A winter evening of strings and brass: Sibelius, Dvořák and a new commission by the orchestra's composer in residence.",
                "performer": "Spree Symphonic Collective",
                "genre": "concert",
                "tags": ["orchestra", "classical", "live"],
            }),
            shows: vec![
                (THEATRE, 7, theatre_prices(8_900, 5_900, 3_500, 2_500)),
                (THEATRE, 21, theatre_prices(8_900, 5_900, 3_500, 2_500)),
            ],
        },
        EventSpec {
            event: json!({
                "title": "A Midsummer Night's Dream",
                "description": "Shakespeare's comedy of lovers, fairies and amateur actors lost in one enchanted night, in a new English-language staging.",
                "performer": "Ensemble Lindenhof",
                "genre": "theatre",
                "tags": ["shakespeare", "comedy", "classic"],
            }),
            shows: vec![
                (THEATRE, 9, theatre_prices(6_500, 4_500, 2_900, 1_900)),
                (THEATRE, 10, theatre_prices(6_500, 4_500, 2_900, 1_900)),
                (THEATRE, 16, theatre_prices(6_500, 4_500, 2_900, 1_900)),
            ],
        },
        EventSpec {
            event: json!({
                "title": "Late Laughs: Stand-up Night",
                "description": "Ninety minutes of new stand-up material about trains, landlords and learning German as an adult.",
                "performer": "Mira Kowalski",
                "genre": "comedy",
                "tags": ["stand-up", "english", "late show"],
            }),
            shows: vec![
                (THEATRE, 12, theatre_prices(4_900, 3_900, 2_500, 1_500)),
                (CLUB, 19, club_prices(3_500, 2_500)),
            ],
        },
        EventSpec {
            event: json!({
                "title": "Neon Harbour Live",
                "description": "The Hamburg duo plays their new album of harbour techno live, with a three-hour DJ set afterwards.",
                "performer": "Neon Harbour",
                "genre": "electronic",
                "tags": ["techno", "dj", "dance"],
            }),
            shows: vec![
                (CLUB, 14, club_prices(4_500, 2_900)),
                (CLUB, 15, club_prices(4_500, 2_900)),
            ],
        },
        EventSpec {
            event: json!({
                "title": "Jazz at Midnight",
                "description": "Piano, double bass and drums: standards and originals from the trio's award-winning record.",
                "performer": "Lena Voss Trio",
                "genre": "jazz",
                "tags": ["jazz", "piano", "trio"],
            }),
            shows: vec![(THEATRE, 24, theatre_prices(5_500, 4_200, 2_800, 2_000))],
        },
    ]
}

/// Creates the venues, events and shows as `admin`.
async fn load(
    services: &Services,
    admin: &AuthUser,
    now: DateTime<Utc>,
) -> anyhow::Result<DemoSummary> {
    let mut venues = Vec::new();
    for layout in [theatre(), club()] {
        let input = serde_json::from_value(layout)
            .context("demo venue JSON does not match the venue input")?;
        let venue = services
            .catalog
            .create_venue(admin, input)
            .await
            .map_err(|error| crate::explain("creating a demo venue", &error))?;
        tracing::info!(venue_id = %venue.id, seats = venue.seat_count, standing = venue.standing_capacity, "demo venue created");
        venues.push((venue.id, format!("{} ({})", venue.name, venue.city)));
    }
    let mut events = Vec::new();
    for spec in event_specs() {
        let input = serde_json::from_value(spec.event)
            .context("demo event JSON does not match the event input")?;
        let event = services
            .catalog
            .create_event(admin, input)
            .await
            .map_err(|error| crate::explain("creating a demo event", &error))?;
        let mut shows = Vec::new();
        for (venue_index, days, prices) in spec.shows {
            let (venue_id, venue_name) = &venues[venue_index];
            let starts_at = evening(now, days);
            let input = serde_json::from_value(json!({
                "venue_id": venue_id,
                "starts_at": starts_at,
                "prices": prices,
            }))
            .context("demo show JSON does not match the show input")?;
            let show = services
                .catalog
                .create_show(admin, &event.id, input)
                .await
                .map_err(|error| crate::explain("creating a demo show", &error))?;
            shows.push((show.id, show.starts_at, venue_name.clone()));
        }
        events.push(CreatedEvent {
            id: event.id,
            title: event.title,
            shows,
        });
    }
    Ok(DemoSummary { venues, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat_count(layout: &Value) -> i64 {
        layout["sections"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|section| section["rows"].as_array())
            .flatten()
            .map(|row| row["seats"].as_i64().unwrap())
            .sum()
    }

    #[test]
    fn the_theatre_has_about_two_thousand_seats() {
        assert_eq!(seat_count(&theatre()), 2_022);
        assert_eq!(seat_count(&club()), 84);
    }

    #[test]
    fn demo_layouts_pass_venue_validation() {
        for layout in [theatre(), club()] {
            let input: boxoffice_domain::VenueInput =
                serde_json::from_value(layout).expect("venue input");
            input.validate().expect("valid layout");
        }
    }

    #[test]
    fn every_show_prices_every_category_of_its_venue() {
        let venues = [theatre(), club()];
        for spec in event_specs() {
            for (venue, _, prices) in &spec.shows {
                for section in venues[*venue]["sections"].as_array().unwrap() {
                    let category = section["category"].as_str().unwrap();
                    assert!(
                        prices.get(category).is_some(),
                        "{} lacks a {category} price",
                        spec.event["title"]
                    );
                }
            }
        }
    }

    #[test]
    fn shows_start_in_the_coming_weeks() {
        let now = Utc::now();
        for spec in event_specs() {
            for (_, days, _) in &spec.shows {
                let starts_at = evening(now, *days);
                assert!(starts_at > now + chrono::Duration::days(5));
                assert!(starts_at < now + chrono::Duration::days(30));
            }
        }
    }
}
