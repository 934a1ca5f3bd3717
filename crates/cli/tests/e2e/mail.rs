//! E-mails through the outbox: the confirmation with working QR codes and a
//! calendar entry, the cancellation, the mailbox folder default, and an SMTP
//! outage that loses and duplicates nothing. The SMTP server is a real one
//! (Python's aiosmtpd, storing into a Maildir), started by the tests.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;
use tokio::process::Command;

use crate::common::*;

both_backends!(
    the_confirmation_has_the_seats_and_qr_codes_that_check_in,
    without_smtp_mail_goes_to_the_mailbox_folder,
    an_smtp_outage_loses_and_duplicates_nothing,
    a_node_without_dispatch_leaves_its_mail_to_another_node,
);

/// How long an e-mail may take to arrive once its server is up.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// A real SMTP server process (aiosmtpd) that stores what it receives in a
/// Maildir. Killed on drop. (Also used by `late_payments`.)
pub(crate) struct SmtpServer {
    process: ServerProcess,
}

impl SmtpServer {
    pub(crate) fn new() -> SmtpServer {
        SmtpServer {
            process: ServerProcess::new("aiosmtpd"),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.process.port)
    }

    pub(crate) async fn start(&mut self) {
        self.start_with(&[]).await;
    }

    /// Starts it with more aiosmtpd options (e.g. its TLS certificate).
    pub(crate) async fn start_with(&mut self, options: &[&str]) {
        let mut command = Command::new("python3");
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.process.port))
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.process.dir);
        self.process.start(command, "pip install aiosmtpd").await;
    }

    pub(crate) fn port(&self) -> u16 {
        self.process.port
    }

    async fn stop(&mut self) {
        self.process.stop().await;
    }

    /// Every message received so far, raw.
    pub(crate) fn messages(&self) -> Vec<Vec<u8>> {
        read_files(&self.process.dir.join("new"))
    }

    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Vec<u8>> {
        wait_for_files(|| self.messages(), count).await
    }
}

pub(crate) fn read_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .collect()
}

async fn wait_for_files(read: impl Fn() -> Vec<Vec<u8>>, count: usize) -> Vec<Vec<u8>> {
    let started = Instant::now();
    loop {
        let messages = read();
        if messages.len() >= count {
            return messages;
        }
        assert!(
            started.elapsed() < ARRIVAL_TIMEOUT,
            "{} of {count} e-mails arrived within {ARRIVAL_TIMEOUT:?}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Books `seats` for a new user; returns the booking.
/// The text a QR code in a PNG image says.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale, "grayscale QR");
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        pixels[y * info.line_size + x]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    content
}

async fn the_confirmation_has_the_seats_and_qr_codes_that_check_in(backend: Backend) {
    let mut smtp = SmtpServer::new();
    smtp.start().await;
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_SMTP_URL", &smtp.url()),
            ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
        ],
    )
    .await;
    let fixture = app.fixture(2, 5, None, json!({})).await;
    let user = app.register_user().await;
    let booking = app.buy(&user, &fixture.show_id, &["A-1-2", "A-1-3"]).await;
    let codes: HashMap<String, String> = booking["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| {
            (
                t["code"].as_str().unwrap_or("").to_string(),
                t["seat_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();

    let raw = smtp.wait_for(1).await;
    assert_eq!(raw.len(), 1, "exactly one e-mail");
    let mail = MessageParser::default()
        .parse(&raw[0])
        .expect("a MIME message");
    let to = mail
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .unwrap_or("");
    assert_eq!(to, user.email);
    let subject = mail.subject().unwrap_or("");
    assert!(
        subject.starts_with("Your tickets: Fixture Night"),
        "{subject}"
    );
    let text = mail.body_text(0).expect("a text part");
    assert!(
        text.contains("Seat A-1-2") && text.contains("Seat A-1-3"),
        "{text}"
    );
    let html = mail.body_html(0).expect("an HTML part");
    let mut decoded = BTreeSet::new();
    let mut calendars = 0;
    for part in mail.attachments() {
        let content_type = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_default();
        match content_type.as_str() {
            "image/png" => {
                let cid = part.content_id().expect("an inline image has a Content-ID");
                assert!(
                    html.contains(&format!("cid:{cid}")),
                    "the HTML shows image {cid}"
                );
                decoded.insert(decode_qr(part.contents()));
            }
            "text/calendar" => {
                calendars += 1;
                let ics = String::from_utf8_lossy(part.contents());
                assert!(
                    ics.contains("BEGIN:VEVENT") && ics.contains("DTSTART:"),
                    "{ics}"
                );
            }
            other => panic!("unexpected attachment {other}"),
        }
    }
    assert_eq!(calendars, 1, "one calendar entry");
    assert_eq!(
        decoded,
        codes.keys().cloned().collect::<BTreeSet<_>>(),
        "the QR codes are the tickets' codes"
    );

    // A code read from the e-mail checks in once.
    let staff = app.staff_user().await;
    let code = decoded.iter().next().expect("a code");
    let first = app
        .post("/v1/checkin", Some(&staff.token), &json!({"code": code}))
        .await;
    assert_eq!(
        first.expect(200, "first scan")["seat_id"],
        codes[code].as_str()
    );
    app.post("/v1/checkin", Some(&staff.token), &json!({"code": code}))
        .await
        .expect_problem(409, "already_checked_in", "second scan");

    // Cancelling sends the cancellation.
    let booking_id = id_of(&booking, &booking);
    app.post(
        &format!("/v1/bookings/{booking_id}/cancel"),
        Some(&user.token),
        &json!({}),
    )
    .await
    .expect(200, "cancel");
    let raw = smtp.wait_for(2).await;
    let subjects: Vec<String> = raw
        .iter()
        .filter_map(|m| MessageParser::default().parse(m))
        .map(|m| m.subject().unwrap_or("").to_string())
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.starts_with("Booking cancelled: Fixture Night")),
        "{subjects:?}"
    );
}

async fn without_smtp_mail_goes_to_the_mailbox_folder(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_OUTBOX_POLL_MS", "50")]).await;
    let fixture = app.fixture(1, 5, None, json!({})).await;
    let user = app.register_user().await;
    app.buy(&user, &fixture.show_id, &["A-1-1"]).await;
    let files = wait_for_files(|| read_files(&app.mailbox), 1).await;
    assert_eq!(files.len(), 1);
    let mail = MessageParser::default()
        .parse(&files[0])
        .expect("an .eml file");
    assert!(mail.subject().unwrap_or("").starts_with("Your tickets:"));
    assert_eq!(
        mail.attachments()
            .filter(|p| p.is_content_type("image", "png"))
            .count(),
        1
    );
}

/// Bookings made while the SMTP server is down: their e-mails wait in the
/// outbox (counted in /metrics) and all arrive, once each, when it is back.
async fn an_smtp_outage_loses_and_duplicates_nothing(backend: Backend) {
    const BOOKINGS: usize = 100;
    const USERS: usize = 25;
    let mut smtp = SmtpServer::new();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_SMTP_URL", &smtp.url()),
            ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
            ("BOXOFFICE_OUTBOX_BACKOFF_MAX_MS", "500"),
            ("BOXOFFICE_RATE_LIMITS", "off"),
        ],
    )
    .await;
    let fixture = app.fixture(10, 10, None, json!({})).await;
    let users = app.register_users(USERS).await;
    let bookings = app
        .buy_concurrently(&users, &fixture.show_id, BOOKINGS / USERS)
        .await;
    assert_eq!(bookings.iter().map(Vec::len).sum::<usize>(), BOOKINGS);

    // The backlog is visible while the server is down.
    let started = Instant::now();
    loop {
        let metrics = app.get("/metrics", None).await.text.clone();
        let pending = metrics
            .lines()
            .find_map(|line| line.strip_prefix("boxoffice_outbox_pending "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if pending >= 1.0 {
            assert!(
                metrics.contains("boxoffice_outbox_oldest_age_seconds"),
                "backlog age in /metrics"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no outbox backlog in /metrics: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(smtp.messages().is_empty());

    smtp.start().await;
    smtp.wait_for(BOOKINGS).await;
    // Long enough for a duplicate to show up if one were on its way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let raw = smtp.messages();
    let message_ids: BTreeSet<String> = raw
        .iter()
        .filter_map(|m| MessageParser::default().parse(m))
        .filter_map(|m| m.message_id().map(str::to_string))
        .collect();
    assert_eq!(raw.len(), BOOKINGS, "every e-mail once");
    assert_eq!(message_ids.len(), BOOKINGS, "distinct Message-IDs");
    smtp.stop().await;
}

/// `BOXOFFICE_OUTBOX_DISPATCH=off`: the node that booked sends nothing; a
/// second node on the same database (dispatch on) sends the e-mail.
async fn a_node_without_dispatch_leaves_its_mail_to_another_node(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_OUTBOX_DISPATCH", "off"),
            ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
        ],
    )
    .await;
    let fixture = app.fixture(1, 5, None, json!({})).await;
    let user = app.register_user().await;
    app.buy(&user, &fixture.show_id, &["A-1-2"]).await;
    // Forty of its polls would have delivered it by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        read_files(&app.mailbox).is_empty(),
        "the node with dispatch off sent mail"
    );
    let _sender = app
        .spawn_peer_with(&[("BOXOFFICE_OUTBOX_DISPATCH", "on")])
        .await;
    let files = wait_for_files(|| read_files(&app.mailbox), 1).await;
    assert_eq!(files.len(), 1, "one e-mail, from the other node");
}
