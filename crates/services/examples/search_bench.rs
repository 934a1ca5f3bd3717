//! Search latency over many events (docs/benchmarks.md, "Search"):
//! fills a fresh database through the store (no HTTP, no Argon2), builds
//! the index the way `serve` does, then times a mix of queries one after
//! another: through the index alone, through the whole use case (index plus
//! the page's events read from the store), type-ahead, and the old
//! substring search in the store over the same events as the baseline.
//!
//! ```sh
//! cargo run --release -p boxoffice-services --example search_bench
//! cargo run --release -p boxoffice-services --example search_bench -- \
//!     --events 100000 --queries 300 --database-url postgres://postgres@127.0.0.1:5432/bench
//! ```
//! Without `--database-url`, an SQLite file in a temporary folder (removed
//! after). A PostgreSQL database must exist and be empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_domain::{EventId, ShowId, ShowStatus, UserId, VenueId, VenueInput, VenueLayout};
use boxoffice_services::search::SearchFilter;
use boxoffice_services::{Services, ServicesConfig};
use boxoffice_store::{
    CatalogStore, EventFilter, EventRecord, PageRequest, ShowRecord, SqlStore, Store, StoreConfig,
    StoredResponse, VenueRecord, WaitingRoomSettings,
};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const EVENTS_DEFAULT: usize = 100_000;
const QUERIES_DEFAULT: usize = 300;
/// The baseline scans every row per query: fewer of them.
const BASELINE_QUERIES_MAX: usize = 60;
const CITIES: usize = 40;
const VENUES: usize = 200;
const WORDS: usize = 5_000;
const PERFORMERS: usize = 20_000;
const GENRES: [&str; 12] = [
    "rock",
    "pop",
    "jazz",
    "classical",
    "folk",
    "metal",
    "techno",
    "opera",
    "comedy",
    "theatre",
    "hiphop",
    "blues",
];
/// Writers at once while filling (PostgreSQL uses them; SQLite has one).
const FILL_CONCURRENCY: usize = 8;
const PAGE_SIZE: u32 = 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    events: usize,
    queries: usize,
    database_url: Option<String>,
    seed: u64,
}

fn args() -> Result<Args, BoxError> {
    let mut args = Args {
        events: EVENTS_DEFAULT,
        queries: QUERIES_DEFAULT,
        database_url: None,
        seed: 1,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let value = raw.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => args.events = value.parse()?,
            "--queries" => args.queries = value.parse()?,
            "--database-url" => args.database_url = Some(value),
            "--seed" => args.seed = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

/// Pronounceable made-up words: enough distinct ones that a typo lands on
/// a neighbour now and then, as in real catalogues.
fn vocabulary(rng: &mut StdRng, count: usize) -> Vec<String> {
    const ONSETS: [&str; 16] = [
        "b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "br", "st",
    ];
    const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ou"];
    const CODAS: [&str; 8] = ["", "n", "r", "l", "s", "th", "nd", "x"];
    let mut words = std::collections::BTreeSet::new();
    while words.len() < count {
        let syllables = rng.gen_range(2..=4);
        let word: String = (0..syllables)
            .map(|_| {
                format!(
                    "{}{}{}",
                    ONSETS.choose(rng).unwrap_or(&"b"),
                    VOWELS.choose(rng).unwrap_or(&"a"),
                    CODAS.choose(rng).unwrap_or(&"")
                )
            })
            .collect();
        words.insert(word);
    }
    words.into_iter().collect()
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn pick<'a>(rng: &mut StdRng, words: &'a [String]) -> &'a str {
    // Skewed: low indexes are common words, as in real text.
    let index = (rng.gen::<f64>().powi(2) * words.len() as f64) as usize;
    words[index.min(words.len() - 1)].as_str()
}

struct World {
    venues: Vec<(VenueId, Arc<VenueLayout>, String)>,
    words: Vec<String>,
    performers: Vec<String>,
}

async fn fill(store: Arc<SqlStore>, args: &Args) -> Result<World, BoxError> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let words = vocabulary(&mut rng, WORDS);
    let cities: Vec<String> = (0..CITIES)
        .map(|_| capitalized(pick(&mut rng, &words)))
        .collect();
    let performers: Vec<String> = (0..PERFORMERS)
        .map(|_| {
            format!(
                "{} {}",
                capitalized(pick(&mut rng, &words)),
                capitalized(pick(&mut rng, &words))
            )
        })
        .collect();
    let now = Utc::now();
    let mut venues = Vec::new();
    for index in 0..VENUES {
        let city = cities[index % CITIES].clone();
        let input: VenueInput = serde_json::from_value(serde_json::json!({
            "name": format!("{} Hall", capitalized(pick(&mut rng, &words))),
            "city": city, "address": "1 Bench Street", "timezone": "Europe/Berlin",
            "sections": [{"id": "FLOOR", "name": "Floor", "kind": "standing",
                          "category": "ga", "capacity": 100}]
        }))?;
        let venue = input
            .validate()
            .map_err(|errors| format!("venue: {errors:?}"))?;
        let record = VenueRecord {
            id: VenueId::generate(now.timestamp_millis() as u64, rng.gen()),
            venue: venue.clone(),
            created_at: now,
        };
        store.insert_venue(&record).await?;
        venues.push((record.id, Arc::new(venue.layout), city));
    }
    // Two famous names among the made-up ones, to see typos at this scale.
    let mut events: Vec<(EventRecord, usize, DateTime<Utc>)> = Vec::with_capacity(args.events);
    for index in 0..args.events {
        let created = now + chrono::Duration::milliseconds(index as i64);
        let (title, performer) = match index {
            0 => ("Music of the Spheres".to_string(), "Coldplay".to_string()),
            1 => (
                "Moonlight Quartet".to_string(),
                "The Moonlighters".to_string(),
            ),
            _ => {
                let title_words = rng.gen_range(1..=4);
                let title: Vec<String> = (0..title_words)
                    .map(|_| capitalized(pick(&mut rng, &words)))
                    .collect();
                let performer = performers.choose(&mut rng).cloned().unwrap_or_default();
                (title.join(" "), performer)
            }
        };
        let description_words = rng.gen_range(10..=40);
        let description: Vec<&str> = (0..description_words)
            .map(|_| pick(&mut rng, &words))
            .collect();
        let tags: Vec<String> = (0..rng.gen_range(0..=3))
            .map(|_| pick(&mut rng, &words[..200]).to_string())
            .collect();
        let event = EventRecord {
            id: EventId::generate(created.timestamp_millis() as u64, rng.gen()),
            title,
            description: description.join(" ") + ".",
            performer,
            genre: GENRES.choose(&mut rng).unwrap_or(&"rock").to_string(),
            tags,
            created_at: created,
            updated_at: created,
        };
        let venue = rng.gen_range(0..VENUES);
        let starts_at = now + chrono::Duration::minutes(rng.gen_range(60..(365 * 24 * 60)));
        events.push((event, venue, starts_at));
    }
    let actor = UserId::from_trusted("usr_bench".into());
    let started = Instant::now();
    let chunk_size = events.len().div_ceil(FILL_CONCURRENCY).max(1);
    let mut tasks = Vec::new();
    for chunk in events.chunks(chunk_size) {
        let chunk = chunk.to_vec();
        let store = store.clone();
        let venues: Vec<_> = venues.clone();
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            for (event, venue, starts_at) in chunk {
                store.insert_event(&event).await?;
                let (venue_id, layout, _) = &venues[venue];
                let show = ShowRecord {
                    id: ShowId::generate(
                        event.created_at.timestamp_millis() as u64,
                        rand::random(),
                    ),
                    event_id: event.id.clone(),
                    venue_id: venue_id.clone(),
                    starts_at,
                    sales_start: event.created_at,
                    prices: serde_json::from_value(
                        serde_json::json!({"ga": {"amount": 5000, "currency": "EUR"}}),
                    )?,
                    hold_ttl_seconds: 600,
                    max_tickets_per_user: 4,
                    waiting_room: WaitingRoomSettings::default(),
                    status: ShowStatus::OnSale,
                    version: 0,
                    created_at: event.created_at,
                    updated_at: event.created_at,
                };
                store.insert_show(&show, layout, &actor).await?;
            }
            Ok::<(), BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    eprintln!(
        "filled {} events with one show each in {:.1} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(World {
        venues,
        words,
        performers,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A word of the vocabulary (title, performer or description).
    Exact,
    /// That word with one edit (swap, drop or change a letter).
    Typo,
    /// The first 3 to 5 letters of a word, still being typed.
    Prefix,
    /// A performer's full name.
    TwoWords,
    /// A word plus a city and a 60-day window.
    Filtered,
}

const KINDS: [Kind; 5] = [
    Kind::Exact,
    Kind::Typo,
    Kind::Prefix,
    Kind::TwoWords,
    Kind::Filtered,
];

struct Query {
    text: String,
    filter: SearchFilter,
}

fn typo(rng: &mut StdRng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let last = chars.len().saturating_sub(1);
    let at = rng.gen_range(1..last.max(2)).min(last);
    match rng.gen_range(0..3) {
        0 if at < last => chars.swap(at, at + 1),
        1 => {
            chars.remove(at);
        }
        _ => chars[at] = 'q',
    }
    chars.into_iter().collect()
}

fn queries(rng: &mut StdRng, world: &World, kind: Kind, count: usize) -> Vec<Query> {
    let long_words: Vec<&String> = world.words.iter().filter(|w| w.len() >= 6).collect();
    (0..count)
        .map(|_| {
            let word = pick(rng, &world.words).to_string();
            let mut filter = SearchFilter::default();
            let text = match kind {
                Kind::Exact => word,
                Kind::Typo => {
                    let long = long_words[rng.gen_range(0..long_words.len())];
                    typo(rng, long)
                }
                Kind::Prefix => {
                    let length = rng.gen_range(3..=5).min(word.len());
                    word.chars().take(length).collect()
                }
                Kind::TwoWords => {
                    world.performers[rng.gen_range(0..world.performers.len())].to_lowercase() + " "
                }
                Kind::Filtered => {
                    let (_, _, city) = &world.venues[rng.gen_range(0..world.venues.len())];
                    let from = Utc::now() + chrono::Duration::days(rng.gen_range(0..300));
                    filter = SearchFilter {
                        city: Some(city.clone()),
                        genre: None,
                        from: Some(from),
                        to: Some(from + chrono::Duration::days(60)),
                    };
                    word
                }
            };
            Query { text, filter }
        })
        .collect()
}

struct Timings {
    samples: Vec<Duration>,
    results: usize,
}

impl Timings {
    fn new() -> Timings {
        Timings {
            samples: Vec::new(),
            results: 0,
        }
    }

    fn percentile(&self, fraction: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
        sorted.get(index).copied().unwrap_or_default()
    }

    fn row(&self, name: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.1} |",
            self.samples.len(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
            self.results as f64 / self.samples.len().max(1) as f64
        )
    }
}

fn no_render(_: &boxoffice_services::ServiceError) -> StoredResponse {
    StoredResponse {
        status: 500,
        body: String::new(),
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = args()?;
    let temporary = std::env::temp_dir().join(format!("bx-search-bench-{}", rand::random::<u32>()));
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&temporary)?;
            format!("sqlite://{}", temporary.join("bench.db").display())
        }
    };
    let store = Arc::new(SqlStore::connect(&StoreConfig::new(url.clone())).await?);
    let world = fill(store.clone(), &args).await?;

    let rss_before = rss_mib();
    let started = Instant::now();
    let dyn_store: Arc<dyn Store> = store.clone();
    let services = Services::build(dyn_store, ServicesConfig::default(), no_render).await?;
    let build = started.elapsed();
    let rss_after = rss_mib();
    let index_mib = services.search.index_bytes() as f64 / (1024.0 * 1024.0);
    eprintln!(
        "index of {} events built in {:.2} s ({index_mib:.1} MiB of segments); \
         resident memory {:.0} → {:.0} MiB",
        services.search.events(),
        build.as_secs_f64(),
        rss_before,
        rss_after
    );

    let mut rng = StdRng::seed_from_u64(args.seed + 1);
    let filter_of = |query: &Query| EventFilter {
        query: Some(query.text.clone()),
        city: query.filter.city.clone(),
        genre: None,
        from: query.filter.from,
        to: query.filter.to,
    };
    let page = PageRequest {
        limit: PAGE_SIZE,
        after: None,
    };
    let mut rows = Vec::new();
    let mut index_all = Timings::new();
    let mut service_all = Timings::new();
    let mut baseline_all = Timings::new();
    for kind in KINDS {
        let batch = queries(&mut rng, &world, kind, args.queries);
        // Warm up (first automata, caches).
        for query in batch.iter().take(10) {
            services
                .search
                .search(&query.text, &query.filter, 0, PAGE_SIZE as usize)
                .await?;
        }
        let mut index = Timings::new();
        let mut service = Timings::new();
        let mut baseline = Timings::new();
        for query in &batch {
            let started = Instant::now();
            let found = services
                .search
                .search(&query.text, &query.filter, 0, PAGE_SIZE as usize)
                .await?;
            index.samples.push(started.elapsed());
            index.results += found.event_ids.len();

            let started = Instant::now();
            let found = services
                .catalog
                .search_events(filter_of(query), &page)
                .await?;
            service.samples.push(started.elapsed());
            service.results += found.items.len();
        }
        for query in batch.iter().take(BASELINE_QUERIES_MAX) {
            let started = Instant::now();
            let found = store.list_events(&filter_of(query), &page).await?;
            baseline.samples.push(started.elapsed());
            baseline.results += found.items.len();
        }
        rows.push(index.row(&format!("index, {kind:?}")));
        rows.push(service.row(&format!("use case, {kind:?}")));
        rows.push(baseline.row(&format!("baseline substring, {kind:?}")));
        index_all.samples.extend(index.samples);
        index_all.results += index.results;
        service_all.samples.extend(service.samples);
        service_all.results += service.results;
        baseline_all.samples.extend(baseline.samples);
        baseline_all.results += baseline.results;
    }
    let mut suggest = Timings::new();
    for query in queries(&mut rng, &world, Kind::Prefix, args.queries) {
        let started = Instant::now();
        let found = services
            .catalog
            .suggest_events(Some(&query.text), 8)
            .await?;
        suggest.samples.push(started.elapsed());
        suggest.results += found.items.len();
    }
    rows.push(suggest.row("suggest (use case), Prefix"));
    rows.push(index_all.row("**index, all kinds**"));
    rows.push(service_all.row("**use case, all kinds**"));
    rows.push(baseline_all.row("**baseline substring, all kinds**"));

    for (text, expected) in [("coldpay", "Coldplay"), ("moonlihgt", "Moonlight Quartet")] {
        let found = services
            .catalog
            .search_events(
                EventFilter {
                    query: Some(text.into()),
                    ..EventFilter::default()
                },
                &page,
            )
            .await?;
        let rank = found
            .items
            .iter()
            .position(|e| e.performer == expected || e.title == expected);
        eprintln!("q={text}: {expected} at rank {rank:?} of the first page");
    }
    let ratio = |fraction: f64| {
        baseline_all.percentile(fraction).as_secs_f64()
            / service_all.percentile(fraction).as_secs_f64().max(1e-9)
    };
    println!(
        "{} events, {}, index built in {:.2} s, {index_mib:.1} MiB of segments, \
         resident memory {:.0} → {:.0} MiB",
        services.search.events(),
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        build.as_secs_f64(),
        rss_before,
        rss_after
    );
    println!("| what, query kind | queries | p50 ms | p99 ms | max ms | results per query |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!(
        "baseline ÷ use case: p50 {:.0}×, p99 {:.0}×",
        ratio(0.5),
        ratio(0.99)
    );
    store.close().await;
    if args.database_url.is_none() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    Ok(())
}
