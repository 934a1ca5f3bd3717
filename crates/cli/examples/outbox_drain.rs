//! Benchmark: how fast the outbox drains a backlog of e-mails after an SMTP
//! outage, against the SMTP ceiling measured in the same run.
//!
//! 1. The ceiling: lettre sends N messages like a confirmation (two QR PNGs)
//!    straight to a fresh aiosmtpd, 8 at a time (the dispatcher's
//!    concurrency).
//! 2. The outbox: `boxoffice serve` (this build) on a fresh SQLite file with
//!    its SMTP server down; N single-seat bookings through the API; then the
//!    SMTP server is started and the time until all N e-mails arrived is the
//!    drain time.
//!
//! ```text
//! cargo build --release -p boxoffice --examples
//! target/release/examples/outbox_drain [MESSAGES] [BINARY]   # default 10000 target/release/boxoffice
//! ```
//! Needs `python3 -m aiosmtpd` (pip install aiosmtpd).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CONCURRENCY: usize = 8;
const CLIENTS: usize = 32;
const TICKETS_PER_USER: usize = 20;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_smtp(port: u16, maildir: &Path) -> anyhow::Result<Child> {
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("python3 -m aiosmtpd")?;
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("aiosmtpd did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(child)
}

fn count(maildir: &Path) -> usize {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn wait_for(maildir: &Path, messages: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while count(maildir) < messages {
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("only {} of {messages} arrived", count(maildir));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}

/// The ceiling: N confirmation-sized messages sent directly.
async fn smtp_ceiling(messages: usize, root: &Path) -> anyhow::Result<f64> {
    let port = free_port()?;
    let maildir = root.join("ceiling");
    let _smtp = start_smtp(port, &maildir).await?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let png = boxoffice_services::tickets::qr_png::qr_png(&"bx1.".repeat(60))?;
    let started = Instant::now();
    futures::stream::iter(0..messages)
        .map(|index| {
            let transport = transport.clone();
            let png = png.clone();
            async move {
                let message = Message::builder()
                    .from("boxoffice <tickets@boxoffice.local>".parse()?)
                    .to(format!("buyer{index}@bench.test").parse()?)
                    .subject("Your tickets")
                    .multipart(
                        MultiPart::related()
                            .singlepart(SinglePart::plain("Seat A-1-1: bx1.…".to_string()))
                            .singlepart(
                                Attachment::new_inline("a".into())
                                    .body(png.clone(), ContentType::parse("image/png")?),
                            )
                            .singlepart(
                                Attachment::new_inline("b".into())
                                    .body(png, ContentType::parse("image/png")?),
                            ),
                    )?;
                transport.send(message).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_for(&maildir, messages).await?;
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

async fn start_server(
    binary: &Path,
    root: &Path,
    smtp_port: u16,
) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .arg("serve")
        .env("BOXOFFICE_LISTEN", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", root.join("bench.db").display()),
        )
        .env("BOXOFFICE_ADMIN_EMAIL", "admin@bench.test")
        .env("BOXOFFICE_ADMIN_PASSWORD", "bench-admin-password")
        .env(
            "BOXOFFICE_SMTP_URL",
            format!("smtp://127.0.0.1:{smtp_port}"),
        )
        .env("BOXOFFICE_OUTBOX_BACKOFF_MAX_MS", "1000")
        .env("BOXOFFICE_RATE_LIMITS", "off")
        .env("RUST_LOG", "error")
        .env_remove("REDIS_URL")
        .env_remove("NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start boxoffice serve")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(url) = line.split("boxoffice listening on ").nth(1) {
            let url = url.trim().trim_end_matches('/').to_string();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, url));
        }
    }
    bail!("the server did not start")
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
    key: Option<String>,
) -> anyhow::Result<Value> {
    let mut request = client.request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let binary = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/release/boxoffice".into()),
    );
    let root = std::env::temp_dir().join(format!("bx-outbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;

    let ceiling = smtp_ceiling(messages, &root).await?;
    eprintln!("SMTP ceiling: {ceiling:.0} messages/s");

    let smtp_port = free_port()?;
    let (_server, base) = start_server(&binary, &root, smtp_port).await?;
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let admin = call(
        &client,
        post.clone(),
        format!("{base}/v1/auth/login"),
        None,
        json!({"email": "admin@bench.test", "password": "bench-admin-password"}),
        None,
    )
    .await?;
    let admin = admin["access_token"]
        .as_str()
        .context("admin token")?
        .to_string();
    let rows = messages.div_ceil(100);
    let venue = call(&client, post.clone(), format!("{base}/v1/venues"), Some(&admin), json!({
        "name": "Bench Hall", "city": "Berlin", "address": "1", "timezone": "Europe/Berlin",
        "sections": [{"id": "A", "name": "A", "kind": "seated", "category": "std",
            "rows": (1..=rows).map(|r| json!({"label": r.to_string(), "seats": 100})).collect::<Vec<_>>()}]}), None).await?;
    let event = call(
        &client,
        post.clone(),
        format!("{base}/v1/events"),
        Some(&admin),
        json!({"title": "Outbox Night"}),
        None,
    )
    .await?;
    let show = call(&client, post.clone(), format!("{base}/v1/events/{}/shows", event["id"].as_str().unwrap_or("")), Some(&admin), json!({
        "venue_id": venue["id"], "starts_at": "2027-01-01T20:00:00Z",
        "prices": {"std": {"amount": 1000, "currency": "EUR"}}, "max_tickets_per_user": TICKETS_PER_USER}), None).await?;
    let show_id = show["id"].as_str().context("show id")?.to_string();
    let users = messages.div_ceil(TICKETS_PER_USER);
    let tokens: Vec<String> = futures::stream::iter(0..users)
        .map(|index| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let body = call(&client, reqwest::Method::POST, format!("{base}/v1/auth/register"), None,
                    json!({"email": format!("buyer{index}@bench.test"), "password": "bench-password", "name": format!("Buyer {index}")}), None).await?;
                anyhow::Ok(body["access_token"].as_str().unwrap_or("").to_string())
            }
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let booking_started = Instant::now();
    futures::stream::iter(0..messages)
        .map(|index| {
            let (client, base, show_id) = (client.clone(), base.clone(), show_id.clone());
            let token = tokens[index / TICKETS_PER_USER].clone();
            async move {
                let seat = format!("A-{}-{}", index / 100 + 1, index % 100 + 1);
                let hold = call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/v1/holds"),
                    Some(&token),
                    json!({"show_id": show_id, "seat_ids": [seat]}),
                    None,
                )
                .await?;
                call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/v1/bookings"),
                    Some(&token),
                    json!({"hold_id": hold["id"], "payment_token": "tok_visa"}),
                    Some(format!("k{index}")),
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!(
        "{messages} bookings made in {:.1} s while SMTP was down",
        booking_started.elapsed().as_secs_f64()
    );
    // Let the failed first attempts back off, as after a real outage.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let maildir = root.join("outbox");
    let _smtp = start_smtp(smtp_port, &maildir).await?;
    let drain = wait_for(&maildir, messages).await?;
    let rate = messages as f64 / drain.as_secs_f64();
    let report = json!({
        "messages": messages,
        "smtp_ceiling_per_second": ceiling.round(),
        "outbox_drain_seconds": (drain.as_secs_f64() * 10.0).round() / 10.0,
        "outbox_drain_per_second": rate.round(),
        "drain_over_ceiling": (rate / ceiling * 100.0).round() / 100.0,
    });
    println!("{report}");
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
