//! The results: one struct per scenario (serialized as-is for `--json`) and
//! the human tables.

pub mod waiting_room;

use std::fmt::Write;

use serde::Serialize;

use crate::invariants::Check;
use crate::server::Memory;
use crate::stats::{ratio, ErrorCounts, LatencySummary};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub urls: Vec<String>,
    /// `sqlite` or the PostgreSQL URL when the server was spawned here.
    pub database: Option<String>,
    pub connections: usize,
    pub seed: u64,
    pub setup: SetupReport,
    pub baseline: Option<ThroughputReport>,
    pub flash_sale: Option<FlashSaleReport>,
    pub browse: Vec<BrowseReport>,
    pub buy: Option<BuyReport>,
    pub waiting_room: Option<waiting_room::WaitingRoomReport>,
    pub ratios: Ratios,
    /// The server's memory, when it runs on this machine.
    pub memory: Option<Memory>,
}

impl Report {
    /// True unless a flash sale ran and one of its invariants failed, or
    /// the waiting room ran and one of its checks failed.
    pub fn invariants_passed(&self) -> bool {
        !matches!(&self.flash_sale, Some(sale) if !sale.invariants_passed)
            && !matches!(&self.waiting_room, Some(room) if !room.checks_passed())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    pub users: u32,
    pub register_seconds: f64,
    pub venue_places: u64,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub name: String,
    pub seconds: f64,
    pub connections: usize,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency: LatencySummary,
    pub errors: ErrorCounts,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ModeCounts {
    pub attempts: u64,
    pub wins: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlashSaleReport {
    pub places: u64,
    pub seated: u64,
    pub standing_capacity: u64,
    pub connections: usize,
    pub seconds: f64,
    pub sold_out: bool,
    /// When the last place was won (seconds from the start), if sold out.
    pub sellout_seconds: Option<f64>,
    /// When the once-a-second poll first saw nothing available.
    pub sellout_seen_seconds: Option<f64>,
    pub attempts: u64,
    pub attempts_per_second: f64,
    pub successes: u64,
    pub successes_per_second: f64,
    pub places_won: u64,
    pub losers: u64,
    pub winners_latency: LatencySummary,
    pub losers_latency: LatencySummary,
    pub errors: ErrorCounts,
    pub chosen: ModeCounts,
    pub best_available: ModeCounts,
    pub standing: ModeCounts,
    /// Places asked for by requests with no readable answer.
    pub unknown_places: u64,
    pub map_available: u64,
    pub map_held: u64,
    pub map_booked: u64,
    pub invariants_passed: bool,
    pub invariants: Vec<Check>,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BrowseReport {
    pub name: String,
    pub seats: u64,
    pub seconds: f64,
    pub connections: usize,
    pub requests: u64,
    pub requests_per_second: f64,
    pub ok_200: u64,
    pub not_modified_304: u64,
    /// The size of one full seat map.
    pub map_bytes: u64,
    pub latency: LatencySummary,
    pub errors: ErrorCounts,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuyReport {
    pub connections: usize,
    pub seconds: f64,
    pub purchases_started: u64,
    pub bookings: u64,
    pub bookings_per_second: f64,
    pub places_booked: u64,
    pub holds_refused: u64,
    pub sold_out: bool,
    pub end_to_end_latency: LatencySummary,
    pub hold_latency: LatencySummary,
    pub booking_latency: LatencySummary,
    pub errors: ErrorCounts,
    pub peak_rss_kib: Option<u64>,
}

/// Each scenario's rate as a share of the same run's `baseline`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    pub flash_sale_attempts_to_baseline: Option<f64>,
    pub flash_sale_successes_to_baseline: Option<f64>,
    /// (seats of the show, ratio)
    pub browse_to_baseline: Vec<(u64, f64)>,
    pub buy_bookings_to_baseline: Option<f64>,
}

impl Ratios {
    pub fn of(
        baseline: Option<&ThroughputReport>,
        sale: Option<&FlashSaleReport>,
        browse: &[BrowseReport],
        buy: Option<&BuyReport>,
    ) -> Ratios {
        let Some(ceiling) = baseline.map(|b| b.requests_per_second) else {
            return Ratios::default();
        };
        Ratios {
            flash_sale_attempts_to_baseline: sale
                .and_then(|sale| ratio(sale.attempts_per_second, ceiling)),
            flash_sale_successes_to_baseline: sale
                .and_then(|sale| ratio(sale.successes_per_second, ceiling)),
            browse_to_baseline: browse
                .iter()
                .filter_map(|b| Some((b.seats, ratio(b.requests_per_second, ceiling)?)))
                .collect(),
            buy_bookings_to_baseline: buy.and_then(|buy| ratio(buy.bookings_per_second, ceiling)),
        }
    }
}

fn latency_row(out: &mut String, what: &str, latency: &LatencySummary) {
    let _ = writeln!(
        out,
        "  {what:<28} {:>10} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
        latency.count, latency.p50_ms, latency.p99_ms, latency.p999_ms, latency.max_ms
    );
}

fn latency_header(out: &mut String) {
    let _ = writeln!(
        out,
        "  {:<28} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency (ms)", "count", "p50", "p99", "p999", "max"
    );
}

fn line(out: &mut String, what: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {what:<28} {value}");
}

fn errors(out: &mut String, errors: &ErrorCounts) {
    if errors.0.is_empty() {
        line(out, "errors", "none");
    } else {
        let list: Vec<String> = errors.0.iter().map(|(c, n)| format!("{c} {n}")).collect();
        line(out, "errors", list.join(", "));
    }
}

fn rss(out: &mut String, peak: Option<u64>) {
    if let Some(kib) = peak {
        line(
            out,
            "server peak RSS",
            format!("{:.1} MiB", kib as f64 / 1024.0),
        );
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The human tables, one block per scenario.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "boxoffice loadtest — {} ({}), {} connections, seed {}",
        report.urls.join(", "),
        report.database.as_deref().unwrap_or("external server"),
        report.connections,
        report.seed
    );
    if report.setup.users > 0 {
        let _ = writeln!(
            out,
            "setup: {} users registered in {:.1} s; venue of {} places",
            report.setup.users, report.setup.register_seconds, report.setup.venue_places
        );
    } else {
        let _ = writeln!(out, "setup: no buyers registered, no sale venue");
    }
    rss(&mut out, report.setup.peak_rss_kib);
    if let Some(baseline) = &report.baseline {
        let _ = writeln!(out, "\n[baseline] GET /healthz, {:.1} s", baseline.seconds);
        line(&mut out, "requests", baseline.requests);
        line(&mut out, "requests/s", baseline.requests_per_second);
        latency_header(&mut out);
        latency_row(&mut out, "200", &baseline.latency);
        errors(&mut out, &baseline.errors);
        rss(&mut out, baseline.peak_rss_kib);
    }
    if let Some(sale) = &report.flash_sale {
        flash_sale(&mut out, sale, &report.ratios);
    }
    for (browse, ratio) in report.browse.iter().zip(report.browse.iter().map(|b| {
        report
            .ratios
            .browse_to_baseline
            .iter()
            .find(|(s, _)| *s == b.seats)
    })) {
        let _ = writeln!(
            out,
            "\n[{}] GET /v1/shows/{{id}}/seats, {:.1} s",
            browse.name, browse.seconds
        );
        line(&mut out, "requests", browse.requests);
        line(&mut out, "requests/s", browse.requests_per_second);
        line(
            &mut out,
            "200 / 304",
            format!("{} / {}", browse.ok_200, browse.not_modified_304),
        );
        line(
            &mut out,
            "seat map size",
            format!("{} bytes", browse.map_bytes),
        );
        line(&mut out, "÷ baseline", percent(ratio.map(|(_, r)| *r)));
        latency_header(&mut out);
        latency_row(&mut out, "200 and 304", &browse.latency);
        errors(&mut out, &browse.errors);
        rss(&mut out, browse.peak_rss_kib);
    }
    if let Some(buy) = &report.buy {
        let _ = writeln!(out, "\n[buy] hold + book (tok_visa), {:.1} s", buy.seconds);
        line(&mut out, "purchases started", buy.purchases_started);
        line(&mut out, "bookings", buy.bookings);
        line(&mut out, "bookings/s", buy.bookings_per_second);
        line(&mut out, "places booked", buy.places_booked);
        line(&mut out, "holds refused (409)", buy.holds_refused);
        line(&mut out, "sold out", buy.sold_out);
        latency_header(&mut out);
        latency_row(&mut out, "end to end", &buy.end_to_end_latency);
        latency_row(&mut out, "POST /v1/holds (201)", &buy.hold_latency);
        latency_row(&mut out, "POST /v1/bookings (201)", &buy.booking_latency);
        errors(&mut out, &buy.errors);
        rss(&mut out, buy.peak_rss_kib);
    }
    if let Some(room) = &report.waiting_room {
        waiting_room::human(&mut out, room);
    }
    if let Some(memory) = &report.memory {
        let _ = writeln!(
            out,
            "\nserver memory: peak RSS {:.1} MiB sampled, VmHWM {:.1} MiB",
            memory.peak_rss_kib as f64 / 1024.0,
            memory.hwm_kib as f64 / 1024.0
        );
    }
    out
}

fn flash_sale(out: &mut String, sale: &FlashSaleReport, ratios: &Ratios) {
    let _ = writeln!(
        out,
        "\n[flash-sale] {} places ({} seated + {} standing), {:.1} s",
        sale.places, sale.seated, sale.standing_capacity, sale.seconds
    );
    line(
        out,
        "sold out",
        match sale.sellout_seconds {
            Some(seconds) => format!("yes, last place won at {seconds:.2} s"),
            None => format!("no ({} places left)", sale.map_available),
        },
    );
    line(out, "attempts", sale.attempts);
    line(out, "attempts/s", sale.attempts_per_second);
    line(out, "successes (201)", sale.successes);
    line(out, "successes/s", sale.successes_per_second);
    line(out, "losers (409)", sale.losers);
    line(out, "places won", sale.places_won);
    line(
        out,
        "attempts ÷ baseline",
        percent(ratios.flash_sale_attempts_to_baseline),
    );
    line(
        out,
        "successes ÷ baseline",
        percent(ratios.flash_sale_successes_to_baseline),
    );
    for (name, mode) in [
        ("chosen seats won/tried", sale.chosen),
        ("best available won/tried", sale.best_available),
        ("standing won/tried", sale.standing),
    ] {
        line(out, name, format!("{}/{}", mode.wins, mode.attempts));
    }
    latency_header(out);
    latency_row(out, "winners (201)", &sale.winners_latency);
    latency_row(out, "losers (409)", &sale.losers_latency);
    errors(out, &sale.errors);
    rss(out, sale.peak_rss_kib);
    let _ = writeln!(
        out,
        "  invariants: {}",
        if sale.invariants_passed {
            "PASS"
        } else {
            "FAIL"
        }
    );
    for check in &sale.invariants {
        let _ = writeln!(
            out,
            "    [{}] {} — {}",
            if check.passed { "pass" } else { "FAIL" },
            check.name,
            check.detail
        );
    }
}
