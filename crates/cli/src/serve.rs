//! `boxoffice serve`: the start-up sequence, the HTTP server and its graceful
//! shutdown.
//!
//! Order matters: the database is migrated and the first admin exists before
//! the socket is bound, and the `boxoffice listening on http://…` line (the
//! one line on stdout, which scripts and tests wait for) is printed only once
//! the socket accepts connections.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::ServeArgs;
use crate::{build_services, connect_store, demo, ensure_admin};

/// After Ctrl-C or SIGTERM, open requests get this long to finish; then the
/// process exits anyway (a stuck client must not keep a node from stopping).
const SHUTDOWN_GRACE_SECONDS: u64 = 10;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing::debug!(config = ?args, "configuration");
    warn_about_unused_services(&args);

    // First, so that start-up work (demo data, reconciliation) is counted too.
    let metrics = boxoffice_http::install_metrics_recorder();
    let store = connect_store(&args.services.database).await?;
    let rate_limits = args.rate_limits.config();
    if rate_limits == boxoffice_services::RateLimitConfig::default() {
        tracing::info!("rate limits are off");
    }
    let services = build_services(
        store.clone(),
        &args.services,
        args.redis_url.as_ref(),
        rate_limits,
    )
    .await?;

    let admin = match (&args.admin.admin_email, &args.admin.admin_password) {
        (Some(email), Some(password)) => {
            Some(ensure_admin(&services, email, password.expose()).await?)
        }
        _ => None,
    };
    let mut demo_summary = None;
    if args.demo {
        let admin = match admin {
            Some(admin) => admin,
            None => demo::ensure_demo_admin(&services).await?,
        };
        demo_summary = demo::load_once(&services, &admin).await?;
    } else if admin.is_none() {
        tracing::info!(
            "no BOXOFFICE_ADMIN_EMAIL/BOXOFFICE_ADMIN_PASSWORD given; create an admin with \
             `boxoffice admin create-user --role admin` if there is none yet"
        );
    }

    let outbox = args.notifications.dispatcher_config(args.nats_url.as_ref());
    // A wrong SMTP URL or an unwritable mailbox stops the start, loudly.
    boxoffice_services::notifications::mail::MailTransport::new(&outbox.mail)
        .map_err(|error| anyhow::anyhow!("e-mail: {error}"))?;
    boxoffice_services::notifications::sms::SmsSender::new(&outbox.sms)
        .map_err(|error| anyhow::anyhow!("SMS: {error}"))?;
    if !args.notifications.outbox_dispatch {
        tracing::info!(
            "BOXOFFICE_OUTBOX_DISPATCH=off: this node sends no e-mails, SMS, events or webhooks; \
             a node on the same database with it on must"
        );
    }
    let (stop_background, background_stopped) = watch::channel(false);
    let background = boxoffice_services::spawn_background(
        services.clone(),
        boxoffice_services::BackgroundConfig {
            expiry_timer: args.expiry_timer,
            expiry_sweep_interval: Duration::from_millis(args.expiry_interval_ms),
            reconcile_interval: Duration::from_secs(args.reconcile_interval_seconds),
            outbox: args.notifications.outbox_dispatch.then_some(outbox),
            webhooks: args
                .notifications
                .outbox_dispatch
                .then(|| args.notifications.webhook_sender_config()),
        },
        background_stopped,
    );

    if let Some(metrics_address) = args.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_address)
            .await
            .with_context(|| {
                format!("cannot listen on {metrics_address} (BOXOFFICE_METRICS_LISTEN)")
            })?;
        let metrics_app = boxoffice_http::metrics_router(metrics.clone());
        tracing::info!(address = %metrics_address, "serving /metrics");
        tokio::spawn(async move {
            if let Err(error) = axum::serve(metrics_listener, metrics_app).await {
                tracing::error!(%error, "the metrics listener failed");
            }
        });
    }
    let state = boxoffice_http::AppState::new(
        services,
        metrics,
        Duration::from_secs(args.request_timeout_seconds),
    )
    .with_client_ip_header(args.rate_limits.client_ip_header.clone());
    let app = boxoffice_http::router(state);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (BOXOFFICE_LISTEN)", args.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    announce(&format!("boxoffice listening on http://{address}"))?;
    if let Some(summary) = demo_summary {
        summary.print(&format!("http://{address}"));
    }
    tracing::info!(%address, "accepting requests");

    let (shutdown_started, mut shutdown_seen) = watch::channel(false);
    // The peer's address is what the rate limits count (unless a proxy
    // header is configured).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing open requests");
        let _ = shutdown_started.send(true);
    });
    let grace_over = async move {
        let _ = shutdown_seen.wait_for(|started| *started).await;
        tokio::time::sleep(Duration::from_secs(SHUTDOWN_GRACE_SECONDS)).await;
    };
    tokio::select! {
        result = server => result.context("the HTTP server failed")?,
        () = grace_over => tracing::warn!(
            grace_seconds = SHUTDOWN_GRACE_SECONDS,
            "requests still open after the shutdown grace period; stopping anyway"
        ),
    }

    let _ = stop_background.send(true);
    if let Err(error) = background.await {
        tracing::warn!(%error, "the background task ended abnormally");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Prints one line to stdout and flushes it, so that a reader on a pipe sees
/// it at once.
fn announce(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").context("cannot write to stdout")?;
    stdout.flush().context("cannot flush stdout")
}

/// (Redis is used, for seat soft-locks and rate limits: `build_services`
/// reports on it.)
fn warn_about_unused_services(args: &ServeArgs) {
    if args.services.payment.stripe_webhook_secret.is_some()
        && args.services.payment.stripe_secret_key.is_none()
    {
        tracing::warn!(
            "BOXOFFICE_STRIPE_WEBHOOK_SECRET is set without BOXOFFICE_STRIPE_SECRET_KEY: webhooks are checked, but payments go to the sandbox"
        );
    }
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
