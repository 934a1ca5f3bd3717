//! Providers over TLS: the server reaches an `https://` Stripe and checks its
//! certificate against the system's CA store (`SSL_CERT_FILE` names the
//! store here, as it does for OpenSSL). The fake Stripe sits behind a TLS
//! proxy of this test whose certificate is issued by a CA made for the test
//! with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fake_stripe::FakeStripe;
use mail_parser::MessageParser;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::common::*;
use crate::mail::SmtpServer;

both_backends!(
    stripe_over_https_is_used_with_a_trusted_certificate,
    stripe_over_https_with_an_untrusted_certificate_charges_nothing,
    mail_goes_over_smtps_and_starttls,
);

const SECRET_KEY: &str = "sk_test_boxoffice_tls";

/// A CA and a `localhost` certificate it issued, in a temporary folder.
struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    fn create() -> TestCa {
        let dir = std::env::temp_dir().join(format!("bx_tls_{}", random_hex(8)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            &dir,
            &[
                &["req", "-x509", "-nodes", "-days", "2"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-subj",
                    "/CN=boxoffice e2e test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req", "-nodes"][..],
                &ec,
                &[
                    "-keyout",
                    "leaf.key",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("extensions file");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                "leaf.pem",
                "-extfile",
                "leaf.ext",
            ],
        );
        TestCa { dir }
    }

    fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    fn leaf_files(&self) -> (String, String) {
        let path = |name: &str| self.dir.join(name).display().to_string();
        (path("leaf.pem"), path("leaf.key"))
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package openssl) runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Terminates TLS with the CA's `localhost` certificate and forwards each
/// connection to `upstream` (the fake Stripe's plain HTTP port).
struct TlsProxy {
    url: String,
    handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    async fn start(ca: &TestCa, upstream: &str) -> TlsProxy {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(ca.dir.join("leaf.pem"))
                .expect("leaf.pem")
                .collect::<Result<_, _>>()
                .expect("leaf certificate");
        let key = PrivateKeyDer::from_pem_file(ca.dir.join("leaf.key")).expect("leaf.key");
        // ring is the only rustls provider compiled in: it is the default.
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, upstream, counted) =
                    (acceptor.clone(), upstream.clone(), counted.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut plain) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        TlsProxy {
            url: format!("https://localhost:{port}"),
            handshakes,
            task,
        }
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_on_https_stripe(backend: Backend, proxy: &TlsProxy, trusted: &TestCa) -> TestApp {
    TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_STRIPE_SECRET_KEY", SECRET_KEY),
            ("BOXOFFICE_STRIPE_API_BASE", &proxy.url),
            ("BOXOFFICE_PAYMENT_TIMEOUT_MS", "2000"),
            ("SSL_CERT_FILE", &trusted.ca_file()),
        ],
    )
    .await
}

/// Seats bought through an `https://` Stripe whose CA the server trusts:
/// the charge is made over TLS, the booking confirmed.
async fn stripe_over_https_is_used_with_a_trusted_certificate(backend: Backend) {
    let ca = TestCa::create();
    let fake = FakeStripe::start(SECRET_KEY).await;
    let proxy = TlsProxy::start(&ca, fake.url()).await;
    let app = spawn_on_https_stripe(backend, &proxy, &ca).await;
    let fixture = app.fixture(1, 4, None, json!({})).await;
    let user = app.register_user().await;

    let resp = app
        .hold_seats(&user.token, &fixture.show_id, &["A-1-1", "A-1-2"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking = resp.expect(201, "booking paid over https");
    assert_eq!(booking["status"], "CONFIRMED", "{booking}");

    let charges = fake.charges();
    assert_eq!(charges.len(), 1, "one charge: {charges:#?}");
    assert_eq!(charges[0].hold_id.as_deref(), Some(hold_id.as_str()));
    assert!(
        proxy.handshakes() >= 1,
        "the charge went through the TLS proxy"
    );
}

/// The same `https://` Stripe, but the server trusts another CA: the TLS
/// handshake fails, nothing is charged, the buyer is told payments are
/// unavailable and keeps the hold.
async fn stripe_over_https_with_an_untrusted_certificate_charges_nothing(backend: Backend) {
    let ca = TestCa::create();
    let other_ca = TestCa::create();
    let fake = FakeStripe::start(SECRET_KEY).await;
    let proxy = TlsProxy::start(&ca, fake.url()).await;
    let app = spawn_on_https_stripe(backend, &proxy, &other_ca).await;
    let fixture = app.fixture(1, 4, None, json!({})).await;
    let user = app.register_user().await;

    let resp = app
        .hold_seats(&user.token, &fixture.show_id, &["A-1-1"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    resp.expect_problem(
        503,
        "payment_unavailable",
        "an untrusted Stripe certificate",
    );

    assert!(fake.charges().is_empty(), "nothing charged");
    assert_eq!(proxy.handshakes(), 0, "no TLS session was accepted");
    let hold = app.get_hold(&user.token, &hold_id).await;
    assert_eq!(hold.expect(200, "the hold")["status"], "ACTIVE");
}

/// E-mail over TLS to a real aiosmtpd with the CA's `localhost`
/// certificate: `smtps://` (TLS from the first byte) and
/// `smtp://…?tls=required` (STARTTLS, which this aiosmtpd requires before
/// it takes mail). The confirmation arrives through each.
async fn mail_goes_over_smtps_and_starttls(backend: Backend) {
    let ca = TestCa::create();
    let (cert, key) = ca.leaf_files();
    let mut smtps = SmtpServer::new();
    smtps
        .start_with(&["--smtpscert", &cert, "--smtpskey", &key])
        .await;
    let mut starttls = SmtpServer::new();
    starttls
        .start_with(&["--tlscert", &cert, "--tlskey", &key])
        .await;
    let routes = [
        (format!("smtps://localhost:{}", smtps.port()), &smtps),
        (
            format!("smtp://localhost:{}?tls=required", starttls.port()),
            &starttls,
        ),
    ];
    for (url, server) in routes {
        let app = TestApp::spawn_with(
            backend,
            &[
                ("BOXOFFICE_SMTP_URL", &url),
                ("SSL_CERT_FILE", &ca.ca_file()),
                ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
            ],
        )
        .await;
        let fixture = app.fixture(1, 4, None, json!({})).await;
        let user = app.register_user().await;
        let resp = app
            .hold_seats(&user.token, &fixture.show_id, &["A-1-1"])
            .await;
        let hold_id = id_of(resp.expect(201, "hold"), &resp);
        app.book(&user.token, &hold_id, &unique_key(), "tok_visa")
            .await
            .expect(201, "booked");
        let mails = server.wait_for(1).await;
        assert_eq!(mails.len(), 1, "{url}: one e-mail");
        let mail = MessageParser::default()
            .parse(&mails[0])
            .expect("an e-mail");
        assert!(
            mail.subject().unwrap_or("").starts_with("Your tickets:"),
            "{url}: {:?}",
            mail.subject()
        );
    }
}
