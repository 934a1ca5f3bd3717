//! A `redis-server` of its own per test (on a free port, nothing on disk),
//! so that tests never share keys. A test that cannot start Redis fails; it
//! never skips.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "redis-server";

pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("these tests need `{REDIS_SERVER}` on the PATH (apt-get install redis-server): {error}")
            });
        let server = RedisServer { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Creates the user `email` with `role` and returns them as a caller.
pub async fn user_with_role(
    services: &boxoffice_services::Services,
    store: &boxoffice_store::SqlStore,
    email: &str,
    role: boxoffice_domain::Role,
) -> boxoffice_services::AuthUser {
    use boxoffice_store::UserStore;
    services
        .auth
        .create_user_with_role(email, "a-password-of-length", "Someone", role)
        .await
        .expect("create the user");
    let id = store
        .user_by_email(email)
        .await
        .expect("read the user")
        .expect("the user exists")
        .id;
    boxoffice_services::AuthUser { id, role }
}

/// An admin, a hall of one row of four `std` seats (`A-1-1`…), an event,
/// and `count` shows of it at EUR 10.00 a seat, each with the fields of
/// `show_extra` (e.g. a waiting room).
pub async fn shows_in_a_small_hall(
    services: &boxoffice_services::Services,
    store: &boxoffice_store::SqlStore,
    count: usize,
    show_extra: serde_json::Value,
) -> Vec<boxoffice_domain::ShowId> {
    let admin = user_with_role(
        services,
        store,
        "admin@hall.test",
        boxoffice_domain::Role::Admin,
    )
    .await;
    let venue = services
        .catalog
        .create_venue(
            &admin,
            serde_json::from_value(serde_json::json!({"name": "Hall", "city": "Berlin", "address": "1", "timezone": "Europe/Berlin",
                "sections": [{"id": "A", "name": "A", "kind": "seated", "category": "std", "rows": [{"label": "1", "seats": 4}]}]}))
            .expect("venue input"),
        )
        .await
        .expect("venue");
    let event = services
        .catalog
        .create_event(
            &admin,
            serde_json::from_value(serde_json::json!({"title": "Hall night"}))
                .expect("event input"),
        )
        .await
        .expect("event");
    let mut shows = Vec::new();
    for _ in 0..count {
        let mut body = serde_json::json!({"venue_id": venue.id, "starts_at": "2030-01-01T20:00:00Z",
            "prices": {"std": {"amount": 1000, "currency": "EUR"}}});
        if let serde_json::Value::Object(extra) = &show_extra {
            for (key, value) in extra {
                body[key] = value.clone();
            }
        }
        let show = services
            .catalog
            .create_show(
                &admin,
                &event.id,
                serde_json::from_value(body).expect("show input"),
            )
            .await
            .expect("show");
        shows.push(boxoffice_domain::ShowId::parse(&show.id).expect("show id"));
    }
    shows
}

fn no_render(_: &boxoffice_services::ServiceError) -> boxoffice_store::StoredResponse {
    boxoffice_store::StoredResponse {
        status: 500,
        body: String::new(),
    }
}

/// A store on `database_url` and the services on it, with the defaults.
pub async fn services_on(
    database_url: String,
) -> (
    std::sync::Arc<boxoffice_store::SqlStore>,
    std::sync::Arc<boxoffice_services::Services>,
) {
    let store = std::sync::Arc::new(
        boxoffice_store::SqlStore::connect(&boxoffice_store::StoreConfig::new(database_url))
            .await
            .expect("open the store"),
    );
    let dyn_store: std::sync::Arc<dyn boxoffice_store::Store> = store.clone();
    let services = boxoffice_services::Services::build(
        dyn_store,
        boxoffice_services::ServicesConfig::default(),
        no_render,
    )
    .await
    .expect("services");
    (store, services)
}
