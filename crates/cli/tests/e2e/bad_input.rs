//! Bad input of any kind gets a 4xx problem+json — never a 5xx, never a
//! hang, never a partial write. Table-driven over every POST and PATCH route.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(bad_input_table, unicode_round_trip, mutated_bodies);

/// How long one bad request may take before we call it a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
const TWO_MEGABYTES: usize = 2 * 1024 * 1024;
const HUNDRED_KILOBYTES: usize = 100 * 1024;

fn long_string() -> String {
    "x".repeat(HUNDRED_KILOBYTES)
}

/// One request of the table and what the contract says about its answer.
struct Case {
    name: String,
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(Option<&'static str>, Vec<u8>)>,
    /// Allowed statuses; empty means any 4xx.
    statuses: Vec<u16>,
    code: Option<&'static str>,
    field: Option<&'static str>,
    /// Send on a connection of its own: a server may close the connection
    /// after answering an oversized body early, which must not fail the next case.
    own_connection: bool,
}

impl Case {
    fn json(mut self, body: Value) -> Case {
        self.body = Some((Some("application/json"), body.to_string().into_bytes()));
        self
    }

    fn raw(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some((content_type, body.into()));
        self
    }

    fn header(mut self, name: &str, value: &str) -> Case {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn without_header(mut self, name: &str) -> Case {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn token(mut self, token: Option<&str>) -> Case {
        self.token = token.map(str::to_string);
        self
    }

    fn expect(mut self, status: u16, code: &'static str) -> Case {
        self.statuses = vec![status];
        self.code = Some(code);
        self
    }

    /// 400 invalid_request naming `field` in `errors`.
    fn invalid(self, field: &'static str) -> Case {
        let mut case = self.expect(400, "invalid_request");
        case.field = Some(field);
        case
    }

    fn any_of(mut self, statuses: &[u16]) -> Case {
        self.statuses = statuses.to_vec();
        self.code = None;
        self
    }

    fn own_connection(mut self) -> Case {
        self.own_connection = true;
        self
    }

    async fn run(&self, api: &Api) -> Result<Resp, String> {
        let api = if self.own_connection {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(CASE_TIMEOUT)
                .build()
                .expect("client");
            Api {
                client,
                ..api.clone()
            }
        } else {
            api.clone()
        };
        let mut request = api
            .request(self.method.clone(), &self.path)
            .maybe_token(self.token.as_deref());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some((content_type, body)) = &self.body {
            request = request.raw(*content_type, body.clone());
        }
        match tokio::time::timeout(CASE_TIMEOUT, request.try_send()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {CASE_TIMEOUT:?} (a hang)")),
        }
    }
}

/// A route of the table: its method, path, who calls it and a valid body.
#[derive(Clone)]
struct Route {
    method: Method,
    path: String,
    token: Option<String>,
    /// Fresh `Idempotency-Key` per case (so no stored answer leaks between cases).
    idempotent: bool,
    valid: Value,
}

impl Route {
    fn new(method: Method, path: &str, token: Option<&str>, valid: Value) -> Route {
        Route {
            method,
            path: path.to_string(),
            token: token.map(str::to_string),
            idempotent: false,
            valid,
        }
    }

    fn idempotent(mut self) -> Route {
        self.idempotent = true;
        self
    }

    /// A case on this route with its token and, by default, its valid body.
    fn case(&self, name: &str) -> Case {
        let mut case = Case {
            name: format!("{} {} — {name}", self.method, self.path),
            method: self.method.clone(),
            path: self.path.clone(),
            token: self.token.clone(),
            headers: Vec::new(),
            body: None,
            statuses: Vec::new(),
            code: None,
            field: None,
            own_connection: false,
        };
        if self.idempotent {
            case = case.header("Idempotency-Key", &unique_key());
        }
        case.json(self.valid.clone())
    }

    /// The valid body with `key` set to `value` (a JSON pointer-free top-level edit).
    fn with(&self, key: &str, value: Value) -> Value {
        let mut body = self.valid.clone();
        body[key] = value;
        body
    }

    fn without(&self, key: &str) -> Value {
        let mut body = self.valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    }

    /// The valid body's JSON text with `"key": <raw JSON text>` (for text
    /// serde_json cannot produce, like a lone surrogate escape).
    fn with_raw(&self, key: &str, raw_json: &str) -> Vec<u8> {
        let mut body = self.without(key);
        body[key] = json!("__RAW__");
        body.to_string()
            .replace("\"__RAW__\"", raw_json)
            .into_bytes()
    }

    /// The cases every JSON route must survive.
    fn generic_cases(&self) -> Vec<Case> {
        let mut padded = self.valid.clone();
        padded["padding"] = json!("x".repeat(TWO_MEGABYTES));
        vec![
            self.case("malformed JSON")
                .raw(Some("application/json"), r#"{"a": "#)
                .expect(400, "invalid_request"),
            self.case("trailing garbage")
                .raw(Some("application/json"), format!("{} xyz", self.valid))
                .expect(400, "invalid_request"),
            self.case("a JSON array")
                .raw(Some("application/json"), "[1, 2, 3]")
                .expect(400, "invalid_request"),
            self.case("a JSON string")
                .raw(Some("application/json"), r#""hello""#)
                .expect(400, "invalid_request"),
            self.case("JSON null")
                .raw(Some("application/json"), "null")
                .expect(400, "invalid_request"),
            self.case("an empty body")
                .raw(Some("application/json"), "")
                .expect(400, "invalid_request"),
            self.case("invalid UTF-8")
                .raw(
                    Some("application/json"),
                    b"{\"name\": \"\xff\xfe\"}".to_vec(),
                )
                .expect(400, "invalid_request"),
            // Any 4xx: a valid body under the wrong type must not be acted on.
            self.case("Content-Type text/plain")
                .raw(Some("text/plain"), self.valid.to_string())
                .any_of(&[]),
            self.case("no Content-Type")
                .raw(None, self.valid.to_string())
                .any_of(&[]),
            self.case("Content-Type application/xml")
                .raw(Some("application/xml"), "<a/>")
                .any_of(&[]),
            self.case("a 2 MB body")
                .raw(Some("application/json"), padded.to_string())
                .expect(413, "payload_too_large")
                .own_connection(),
        ]
    }

    fn auth_cases(&self, customer: &str, role_required: bool) -> Vec<Case> {
        let mut cases = vec![self
            .case("no token")
            .token(None)
            .expect(401, "unauthorized")];
        cases.push(
            self.case("a garbage token")
                .token(Some("not.a.jwt"))
                .expect(401, "unauthorized"),
        );
        if role_required {
            cases.push(
                self.case("a customer token")
                    .token(Some(customer))
                    .expect(403, "forbidden"),
            );
        }
        cases
    }
}

/// Everything the table needs to exist, and a snapshot to compare with later.
struct World {
    fixture: Fixture,
    customer: TestUser,
    other: TestUser,
    spare: TestUser,
    hold_id: String,
    others_hold_id: String,
    booking_id: String,
    others_booking_id: String,
    big_cancel_booking_id: String,
    ticket_code: String,
}

async fn build_world(app: &TestApp) -> World {
    let fixture = app.fixture(2, 10, Some(10), json!({})).await;
    let show_id = fixture.show_id.as_str();
    let customer = app.register_user().await;
    let other = app.register_user().await;
    let spare = app.register_user().await;
    let hold = |user: TestUser, seat: &'static str| async move {
        let resp = app.hold_seats(&user.token, show_id, &[seat]).await;
        id_of(resp.expect(201, "world hold"), &resp)
    };
    let book = |user: TestUser, hold_id: String| async move {
        let resp = app
            .book(&user.token, &hold_id, &unique_key(), "tok_visa")
            .await;
        resp.expect(201, "world booking").clone()
    };
    let hold_id = hold(customer.clone(), "A-2-10").await;
    let booking = book(customer.clone(), hold(customer.clone(), "A-2-9").await).await;
    let big_cancel = book(customer.clone(), hold(customer.clone(), "A-2-8").await).await;
    let others_booking = book(other.clone(), hold(other.clone(), "A-2-7").await).await;
    let others_hold_id = hold(other.clone(), "A-2-6").await;
    World {
        booking_id: id_of(&booking, &booking),
        others_booking_id: id_of(&others_booking, &others_booking),
        big_cancel_booking_id: id_of(&big_cancel, &big_cancel),
        ticket_code: others_booking["tickets"][0]["code"]
            .as_str()
            .expect("ticket code")
            .to_string(),
        fixture,
        customer,
        other,
        spare,
        hold_id,
        others_hold_id,
    }
}

fn table(app: &TestApp, world: &World) -> Vec<Case> {
    let admin = Some(app.admin_token.as_str());
    let customer = world.customer.token.as_str();
    let fixture = &world.fixture;
    let long = long_string();
    let lone_surrogate = r#""\ud800""#;
    let mut cases = Vec::new();

    // --- POST /v1/auth/register -----------------------------------------------
    let register = Route::new(
        Method::POST,
        "/v1/auth/register",
        None,
        json!({"email": unique_email(), "password": USER_PASSWORD, "name": "Bad Input"}),
    );
    cases.extend(register.generic_cases());
    cases.extend([
        register
            .case("missing email")
            .json(register.without("email"))
            .invalid("email"),
        register
            .case("missing password")
            .json(register.without("password"))
            .invalid("password"),
        register
            .case("missing name")
            .json(register.without("name"))
            .invalid("name"),
        register
            .case("email is a number")
            .json(register.with("email", json!(42)))
            .invalid("email"),
        register
            .case("name is an array")
            .json(register.with("name", json!(["x"])))
            .invalid("name"),
        register
            .case("phone is a number")
            .json(register.with("phone", json!(12345)))
            .invalid("phone"),
        register
            .case("not an email")
            .json(register.with("email", json!("not-an-email")))
            .invalid("email"),
        register
            .case("empty email")
            .json(register.with("email", json!("")))
            .invalid("email"),
        register
            .case("empty password")
            .json(register.with("password", json!("")))
            .invalid("password"),
        register
            .case("email with NUL")
            .json(register.with("email", json!("a\u{0}b@example.test")))
            .invalid("email"),
        register
            .case("100 KB name")
            .json(register.with("name", json!(long)))
            .any_of(&[400, 413]),
        register
            .case("100 KB email")
            .json(register.with("email", json!(format!("{long}@example.test"))))
            .any_of(&[400, 413]),
        register
            .case("100 KB password")
            .json(register.with("password", json!(long)))
            .any_of(&[400, 413]),
        register
            .case("lone surrogate name")
            .raw(
                Some("application/json"),
                register.with_raw("name", lone_surrogate),
            )
            .expect(400, "invalid_request"),
    ]);

    // --- POST /v1/auth/login ----------------------------------------------------
    let login = Route::new(
        Method::POST,
        "/v1/auth/login",
        None,
        json!({"email": world.spare.email, "password": "wrong-password-123"}),
    );
    cases.extend(login.generic_cases());
    cases.extend([
        login
            .case("missing email")
            .json(login.without("email"))
            .invalid("email"),
        login
            .case("missing password")
            .json(login.without("password"))
            .invalid("password"),
        login
            .case("email is a number")
            .json(login.with("email", json!(5)))
            .invalid("email"),
        login
            .case("password is null")
            .json(login.with("password", Value::Null))
            .invalid("password"),
        login
            .case("wrong password")
            .expect(401, "invalid_credentials"),
        login
            .case("unknown email")
            .json(login.with("email", json!(unique_email())))
            .expect(401, "invalid_credentials"),
        login
            .case("100 KB password")
            .json(login.with("password", json!(long)))
            .any_of(&[400, 401, 413]),
        login
            .case("lone surrogate password")
            .raw(
                Some("application/json"),
                login.with_raw("password", lone_surrogate),
            )
            .expect(400, "invalid_request"),
    ]);

    // --- PATCH /v1/users/{id} -----------------------------------------------------
    let users = Route::new(
        Method::PATCH,
        &format!("/v1/users/{}", world.spare.id),
        admin,
        json!({"role": "staff"}),
    );
    cases.extend(users.generic_cases());
    cases.extend(users.auth_cases(customer, true));
    cases.extend([
        users
            .case("unknown role")
            .json(json!({"role": "superuser"}))
            .invalid("role"),
        users
            .case("role is a number")
            .json(json!({"role": 5}))
            .invalid("role"),
        users
            .case("role is null")
            .json(json!({"role": null}))
            .invalid("role"),
        users
            .case("role with NUL")
            .json(json!({"role": "staff\u{0}"}))
            .invalid("role"),
        Route::new(
            Method::PATCH,
            "/v1/users/usr_does_not_exist",
            admin,
            json!({"role": "staff"}),
        )
        .case("unknown user")
        .expect(404, "not_found"),
        Route::new(
            Method::PATCH,
            "/v1/users/%F0%9F%8E%AB%E2%80%AE",
            admin,
            json!({"role": "staff"}),
        )
        .case("emoji user id")
        .any_of(&[400, 404]),
    ]);

    // --- POST /v1/venues -------------------------------------------------------------
    let venue = Route::new(
        Method::POST,
        "/v1/venues",
        admin,
        venue_layout("Rejected Hall", 2, 5, Some(10)),
    );
    let with_section = |edit: &dyn Fn(&mut Value)| {
        let mut body = venue.valid.clone();
        edit(&mut body["sections"][0]);
        body
    };
    let with_row = |edit: &dyn Fn(&mut Value)| {
        let mut body = venue.valid.clone();
        edit(&mut body["sections"][0]["rows"][0]);
        body
    };
    let with_standing = |edit: &dyn Fn(&mut Value)| {
        let mut body = venue.valid.clone();
        edit(&mut body["sections"][1]);
        body
    };
    cases.extend(venue.generic_cases());
    cases.extend(venue.auth_cases(customer, true));
    cases.extend([
        venue
            .case("missing name")
            .json(venue.without("name"))
            .invalid("name"),
        venue
            .case("missing sections")
            .json(venue.without("sections"))
            .invalid("sections"),
        venue
            .case("sections is a string")
            .json(venue.with("sections", json!("abc")))
            .invalid("sections"),
        venue
            .case("no sections")
            .json(venue.with("sections", json!([])))
            .invalid("sections"),
        venue
            .case("unknown kind")
            .json(with_section(&|s| s["kind"] = json!("floating")))
            .invalid("kind"),
        venue
            .case("missing category")
            .json(with_section(&|s| {
                s.as_object_mut().unwrap().remove("category");
            }))
            .invalid("category"),
        venue
            .case("row of 0 seats")
            .json(with_row(&|r| r["seats"] = json!(0)))
            .invalid("seats"),
        venue
            .case("row of -1 seats")
            .json(with_row(&|r| r["seats"] = json!(-1)))
            .invalid("seats"),
        venue
            .case("row of a billion seats")
            .json(with_row(&|r| r["seats"] = json!(1_000_000_000)))
            .invalid("seats"),
        venue
            .case("row of 1e30 seats")
            .raw(
                Some("application/json"),
                venue.valid.to_string().replacen(
                    "\"seats\":5",
                    "\"seats\":1000000000000000000000000000000",
                    1,
                ),
            )
            .invalid("seats"),
        venue
            .case("seats is a string")
            .json(with_row(&|r| r["seats"] = json!("10")))
            .invalid("seats"),
        venue
            .case("negative capacity")
            .json(with_standing(&|s| s["capacity"] = json!(-5)))
            .invalid("capacity"),
        venue
            .case("capacity 1e20")
            .raw(
                Some("application/json"),
                venue.valid.to_string().replacen(
                    "\"capacity\":10",
                    "\"capacity\":100000000000000000000",
                    1,
                ),
            )
            .invalid("capacity"),
        venue
            .case("section id with emoji")
            .json(with_section(&|s| s["id"] = json!("A🎫")))
            .invalid("id"),
        venue
            .case("empty section id")
            .json(with_section(&|s| s["id"] = json!("")))
            .invalid("id"),
        venue
            .case("section id with NUL")
            .json(with_section(&|s| s["id"] = json!("A\u{0}")))
            .invalid("id"),
        venue
            .case("row label with RTL mark")
            .json(with_row(&|r| r["label"] = json!("1\u{200F}")))
            .invalid("label"),
        venue
            .case("duplicate section ids")
            .json(with_standing(&|s| s["id"] = json!(SEATED_SECTION)))
            .expect(400, "invalid_request"),
        venue
            .case("duplicate row labels")
            .json(with_section(&|s| s["rows"][1]["label"] = json!("1")))
            .expect(400, "invalid_request"),
        venue
            .case("100 KB name")
            .json(venue.with("name", json!(long)))
            .any_of(&[400, 413]),
        venue
            .case("lone surrogate name")
            .raw(
                Some("application/json"),
                venue.with_raw("name", lone_surrogate),
            )
            .expect(400, "invalid_request"),
    ]);

    // --- POST /v1/events -----------------------------------------------------------------
    let event = Route::new(
        Method::POST,
        "/v1/events",
        admin,
        json!({"title": "Rejected Event", "description": "d", "performer": "p", "genre": "rock", "tags": ["a"]}),
    );
    cases.extend(event.generic_cases());
    cases.extend(event.auth_cases(customer, true));
    cases.extend([
        event
            .case("missing title")
            .json(event.without("title"))
            .invalid("title"),
        event
            .case("title is a number")
            .json(event.with("title", json!(5)))
            .invalid("title"),
        event
            .case("empty title")
            .json(event.with("title", json!("")))
            .invalid("title"),
        event
            .case("tags is a string")
            .json(event.with("tags", json!("rock")))
            .invalid("tags"),
        event
            .case("tags of numbers")
            .json(event.with("tags", json!([1, 2])))
            .invalid("tags"),
        event
            .case("100 KB title")
            .json(event.with("title", json!(long)))
            .any_of(&[400, 413]),
        event
            .case("lone surrogate title")
            .raw(
                Some("application/json"),
                event.with_raw("title", lone_surrogate),
            )
            .expect(400, "invalid_request"),
    ]);

    // --- PATCH /v1/events/{id} --------------------------------------------------------------
    let patch_event = Route::new(
        Method::PATCH,
        &format!("/v1/events/{}", fixture.event_id),
        admin,
        json!({"title": "Renamed"}),
    );
    cases.extend(patch_event.generic_cases());
    cases.extend(patch_event.auth_cases(customer, true));
    cases.extend([
        Route::new(
            Method::PATCH,
            "/v1/events/evt_does_not_exist",
            admin,
            json!({"title": "x"}),
        )
        .case("unknown event")
        .expect(404, "not_found"),
        patch_event
            .case("title is a number")
            .json(json!({"title": 5}))
            .invalid("title"),
        patch_event
            .case("empty title")
            .json(json!({"title": ""}))
            .invalid("title"),
        patch_event
            .case("tags is an object")
            .json(json!({"tags": {}}))
            .invalid("tags"),
        patch_event
            .case("100 KB title")
            .json(json!({"title": long}))
            .any_of(&[400, 413]),
        patch_event
            .case("lone surrogate title")
            .raw(Some("application/json"), r#"{"title": "\ud800"}"#)
            .expect(400, "invalid_request"),
    ]);

    // --- POST /v1/events/{id}/shows -----------------------------------------------------------
    let show = Route::new(
        Method::POST,
        &format!("/v1/events/{}/shows", fixture.event_id),
        admin,
        show_body(&fixture.venue_id, json!({})),
    );
    let with_price = |category: &str, key: &str, value: Value| {
        let mut body = show.valid.clone();
        body["prices"][category][key] = value;
        body
    };
    cases.extend(show.generic_cases());
    cases.extend(show.auth_cases(customer, true));
    cases.extend([
        Route::new(
            Method::POST,
            "/v1/events/evt_does_not_exist/shows",
            admin,
            show.valid.clone(),
        )
        .case("unknown event")
        .expect(404, "not_found"),
        show.case("unknown venue")
            .json(show.with("venue_id", json!("ven_does_not_exist")))
            .any_of(&[400, 404, 422]),
        show.case("missing venue_id")
            .json(show.without("venue_id"))
            .invalid("venue_id"),
        show.case("missing starts_at")
            .json(show.without("starts_at"))
            .invalid("starts_at"),
        show.case("starts_at not a time")
            .json(show.with("starts_at", json!("tomorrow")))
            .invalid("starts_at"),
        show.case("starts_at a number")
            .json(show.with("starts_at", json!(12345)))
            .invalid("starts_at"),
        show.case("hold_ttl_seconds 0")
            .json(show.with("hold_ttl_seconds", json!(0)))
            .invalid("hold_ttl_seconds"),
        show.case("hold_ttl_seconds 3601")
            .json(show.with("hold_ttl_seconds", json!(3601)))
            .invalid("hold_ttl_seconds"),
        show.case("hold_ttl_seconds -1")
            .json(show.with("hold_ttl_seconds", json!(-1)))
            .invalid("hold_ttl_seconds"),
        show.case("hold_ttl_seconds a string")
            .json(show.with("hold_ttl_seconds", json!("60")))
            .invalid("hold_ttl_seconds"),
        show.case("hold_ttl_seconds 1e30")
            .raw(
                Some("application/json"),
                show.with_raw("hold_ttl_seconds", "1000000000000000000000000000000"),
            )
            .invalid("hold_ttl_seconds"),
        show.case("max_tickets_per_user 0")
            .json(show.with("max_tickets_per_user", json!(0)))
            .invalid("max_tickets_per_user"),
        show.case("max_tickets_per_user -3")
            .json(show.with("max_tickets_per_user", json!(-3)))
            .invalid("max_tickets_per_user"),
        show.case("max_tickets_per_user 1e30")
            .raw(
                Some("application/json"),
                show.with_raw("max_tickets_per_user", "1e30"),
            )
            .invalid("max_tickets_per_user"),
        show.case("a category without price")
            .json(show.with("prices", json!({SEAT_CATEGORY: money(100)})))
            .expect(422, "price_missing"),
        show.case("no prices at all")
            .json(show.with("prices", json!({})))
            .expect(422, "price_missing"),
        show.case("negative price")
            .json(with_price(SEAT_CATEGORY, "amount", json!(-100)))
            .invalid("prices"),
        show.case("fractional price")
            .json(with_price(SEAT_CATEGORY, "amount", json!(15.5)))
            .invalid("prices"),
        show.case("price 1e30")
            .json(with_price(SEAT_CATEGORY, "amount", json!(1e30)))
            .invalid("prices"),
        show.case("currency EURO")
            .json(with_price(SEAT_CATEGORY, "currency", json!("EURO")))
            .invalid("prices"),
        show.case("currency €UR")
            .json(with_price(SEAT_CATEGORY, "currency", json!("€UR")))
            .invalid("prices"),
        show.case("sales_start not a time")
            .json(show.with("sales_start", json!("soon")))
            .invalid("sales_start"),
        show.case("waiting_room a string")
            .json(show.with("waiting_room", json!("yes")))
            .invalid("waiting_room"),
    ]);

    // --- PATCH /v1/shows/{id} ---------------------------------------------------------------------
    let patch_show = Route::new(
        Method::PATCH,
        &format!("/v1/shows/{}", fixture.show_id),
        admin,
        json!({"max_tickets_per_user": 4}),
    );
    cases.extend(patch_show.generic_cases());
    cases.extend(patch_show.auth_cases(customer, true));
    cases.extend([
        Route::new(
            Method::PATCH,
            "/v1/shows/shw_does_not_exist",
            admin,
            json!({"status": "PAUSED"}),
        )
        .case("unknown show")
        .expect(404, "not_found"),
        patch_show
            .case("unknown status")
            .json(json!({"status": "SOLD_OUT"}))
            .invalid("status"),
        patch_show
            .case("status a number")
            .json(json!({"status": 1}))
            .invalid("status"),
        patch_show
            .case("hold_ttl_seconds 0")
            .json(json!({"hold_ttl_seconds": 0}))
            .invalid("hold_ttl_seconds"),
        patch_show
            .case("hold_ttl_seconds 3601")
            .json(json!({"hold_ttl_seconds": 3601}))
            .invalid("hold_ttl_seconds"),
        patch_show
            .case("max_tickets_per_user 0")
            .json(json!({"max_tickets_per_user": 0}))
            .invalid("max_tickets_per_user"),
        patch_show
            .case("max_tickets_per_user -1")
            .json(json!({"max_tickets_per_user": -1}))
            .invalid("max_tickets_per_user"),
        patch_show
            .case("prices missing a category")
            .json(json!({"prices": {SEAT_CATEGORY: money(100)}}))
            .expect(422, "price_missing"),
        patch_show
            .case("negative price")
            .json(json!({"prices": {SEAT_CATEGORY: money(-1), STANDING_CATEGORY: money(1)}}))
            .invalid("prices"),
        patch_show
            .case("sales_start garbage")
            .json(json!({"sales_start": "garbage"}))
            .invalid("sales_start"),
        patch_show
            .case("a valid status with an invalid ttl")
            .json(json!({"status": "PAUSED", "hold_ttl_seconds": 0}))
            .invalid("hold_ttl_seconds"),
    ]);

    // --- POST /v1/holds ------------------------------------------------------------------------------
    let hold = Route::new(
        Method::POST,
        "/v1/holds",
        Some(customer),
        json!({"show_id": fixture.show_id, "seat_ids": ["A-1-1"]}),
    )
    .idempotent();
    cases.extend(hold.generic_cases());
    cases.extend(hold.auth_cases(customer, false));
    let many_seats: Vec<String> = (0..10_000).map(|i| format!("A-1-{i}")).collect();
    cases.extend([
        hold.case("unknown show")
            .json(hold.with("show_id", json!("shw_does_not_exist")))
            .expect(404, "not_found"),
        hold.case("missing show_id")
            .json(hold.without("show_id"))
            .invalid("show_id"),
        hold.case("show_id a number")
            .json(hold.with("show_id", json!(5)))
            .invalid("show_id"),
        hold.case("empty seat list")
            .json(hold.with("seat_ids", json!([])))
            .expect(400, "invalid_request"),
        hold.case("duplicate seat")
            .json(hold.with("seat_ids", json!(["A-1-1", "A-1-1"])))
            .expect(400, "invalid_request"),
        hold.case("unknown seat")
            .json(hold.with("seat_ids", json!(["Z-9-99"])))
            .expect(400, "invalid_request"),
        hold.case("seat 0")
            .json(hold.with("seat_ids", json!(["A-1-0"])))
            .expect(400, "invalid_request"),
        hold.case("a known and an unknown seat")
            .json(hold.with("seat_ids", json!(["A-1-1", "A-1-99"])))
            .expect(400, "invalid_request"),
        hold.case("seat id with NUL")
            .json(hold.with("seat_ids", json!(["A-1-1\u{0}"])))
            .expect(400, "invalid_request"),
        hold.case("seat id with emoji")
            .json(hold.with("seat_ids", json!(["A-1-1🎫"])))
            .expect(400, "invalid_request"),
        hold.case("seat id with RTL override")
            .json(hold.with("seat_ids", json!(["\u{202E}A-1-1"])))
            .expect(400, "invalid_request"),
        hold.case("seat_ids a string")
            .json(hold.with("seat_ids", json!("A-1-1")))
            .invalid("seat_ids"),
        hold.case("100 KB seat id")
            .json(hold.with("seat_ids", json!([long])))
            .any_of(&[400, 413]),
        hold.case("10 000 seat ids")
            .json(hold.with("seat_ids", json!(many_seats)))
            .any_of(&[400, 413, 422]),
        hold.case("lone surrogate seat id")
            .raw(
                Some("application/json"),
                hold.with_raw("seat_ids", r#"["\ud800"]"#),
            )
            .expect(400, "invalid_request"),
        hold.case("quantity 0")
            .json(json!({"show_id": fixture.show_id, "quantity": 0}))
            .invalid("quantity"),
        hold.case("quantity -1")
            .json(json!({"show_id": fixture.show_id, "quantity": -1}))
            .invalid("quantity"),
        hold.case("quantity a string")
            .json(json!({"show_id": fixture.show_id, "quantity": "2"}))
            .invalid("quantity"),
        hold.case("quantity 1e30")
            .raw(
                Some("application/json"),
                format!(r#"{{"show_id": "{}", "quantity": 1e30}}"#, fixture.show_id),
            )
            .invalid("quantity"),
        hold.case("quantity a million")
            .json(json!({"show_id": fixture.show_id, "quantity": 1_000_000}))
            .any_of(&[400, 409, 422]),
        hold.case("standing quantity 0")
            .json(json!({"show_id": fixture.show_id, "section": STANDING_SECTION, "quantity": 0}))
            .invalid("quantity"),
        hold.case("both forms at once")
            .json(json!({"show_id": fixture.show_id, "seat_ids": ["A-1-1"], "quantity": 1}))
            .expect(400, "invalid_request"),
        hold.case("no form at all")
            .json(json!({"show_id": fixture.show_id}))
            .expect(400, "invalid_request"),
        hold.case("unknown standing section")
            .json(json!({"show_id": fixture.show_id, "section": "NOPE", "quantity": 1}))
            .any_of(&[400, 404]),
        hold.case("standing hold on a seated section")
            .json(json!({"show_id": fixture.show_id, "section": SEATED_SECTION, "quantity": 1}))
            .any_of(&[400, 409]),
        hold.case("unknown category")
            .json(json!({"show_id": fixture.show_id, "quantity": 1, "category": "vip"}))
            .any_of(&[400, 404, 409, 422]),
        hold.case("a 300-character Idempotency-Key")
            .header("Idempotency-Key", &"k".repeat(300))
            .expect(400, "invalid_request"),
    ]);

    // --- POST /v1/bookings ------------------------------------------------------------------------------
    let booking = Route::new(
        Method::POST,
        "/v1/bookings",
        Some(customer),
        json!({"hold_id": world.hold_id, "payment_token": "tok_visa"}),
    )
    .idempotent();
    cases.extend(booking.generic_cases());
    cases.extend(booking.auth_cases(customer, false));
    cases.extend([
        booking
            .case("no Idempotency-Key")
            .without_header("Idempotency-Key")
            .expect(400, "idempotency_key_required"),
        booking
            .case("a 300-character Idempotency-Key")
            .header("Idempotency-Key", &"k".repeat(300))
            .expect(400, "invalid_request"),
        booking
            .case("unknown hold")
            .json(booking.with("hold_id", json!("hld_does_not_exist")))
            .expect(404, "not_found"),
        booking
            .case("another user's hold")
            .json(booking.with("hold_id", json!(world.others_hold_id)))
            .expect(404, "not_found"),
        booking
            .case("missing hold_id")
            .json(booking.without("hold_id"))
            .invalid("hold_id"),
        booking
            .case("hold_id a number")
            .json(booking.with("hold_id", json!(5)))
            .invalid("hold_id"),
        booking
            .case("missing payment_token")
            .json(booking.without("payment_token"))
            .invalid("payment_token"),
        booking
            .case("payment_token without tok_")
            .json(booking.with("payment_token", json!("visa")))
            .invalid("payment_token"),
        booking
            .case("payment_token a number")
            .json(booking.with("payment_token", json!(5)))
            .invalid("payment_token"),
        booking
            .case("100 KB hold_id")
            .json(booking.with("hold_id", json!(long)))
            .any_of(&[400, 404, 413]),
        booking
            .case("hold_id with NUL")
            .json(booking.with("hold_id", json!(format!("{}\u{0}", world.hold_id))))
            .any_of(&[400, 404]),
        booking
            .case("lone surrogate payment_token")
            .raw(
                Some("application/json"),
                booking.with_raw("payment_token", lone_surrogate),
            )
            .expect(400, "invalid_request"),
    ]);

    // --- POST /v1/bookings/{id}/cancel ---------------------------------------------------------------------
    let cancel = |id: &str, token: Option<&str>| Case {
        name: format!("POST /v1/bookings/{id}/cancel"),
        method: Method::POST,
        path: format!("/v1/bookings/{id}/cancel"),
        token: token.map(str::to_string),
        headers: Vec::new(),
        body: None,
        statuses: Vec::new(),
        code: None,
        field: None,
        own_connection: false,
    };
    let mut padded = json!({});
    padded["padding"] = json!("x".repeat(TWO_MEGABYTES));
    cases.extend([
        Case {
            name: "cancel — unknown booking".into(),
            ..cancel("bkg_does_not_exist", Some(customer))
        }
        .expect(404, "not_found"),
        Case {
            name: "cancel — another user's booking".into(),
            ..cancel(&world.others_booking_id, Some(customer))
        }
        .expect(404, "not_found"),
        Case {
            name: "cancel — no token".into(),
            ..cancel(&world.booking_id, None)
        }
        .expect(401, "unauthorized"),
        Case {
            name: "cancel — garbage token".into(),
            ..cancel(&world.booking_id, Some("x.y.z"))
        }
        .expect(401, "unauthorized"),
        Case {
            name: "cancel — a 2 MB body".into(),
            ..cancel(&world.big_cancel_booking_id, Some(customer))
        }
        .raw(Some("application/json"), padded.to_string())
        .expect(413, "payload_too_large")
        .own_connection(),
    ]);

    // --- POST /v1/checkin ---------------------------------------------------------------------------------------
    let checkin = Route::new(
        Method::POST,
        "/v1/checkin",
        admin,
        json!({"code": world.ticket_code}),
    );
    cases.extend(checkin.generic_cases());
    cases.extend(checkin.auth_cases(customer, true));
    cases.extend([
        checkin.case("missing code").json(json!({})).invalid("code"),
        checkin
            .case("code a number")
            .json(json!({"code": 5}))
            .invalid("code"),
        checkin
            .case("garbage code")
            .json(json!({"code": "garbage"}))
            .expect(400, "invalid_ticket"),
        checkin
            .case("100 KB code")
            .json(json!({"code": long}))
            .any_of(&[400, 413]),
        checkin
            .case("code with NUL")
            .json(json!({"code": format!("{}\u{0}", world.ticket_code)}))
            .any_of(&[400]),
        checkin
            .case("code with emoji and RTL")
            .json(json!({"code": "🎫\u{200F}abc"}))
            .expect(400, "invalid_ticket"),
        checkin
            .case("lone surrogate code")
            .raw(Some("application/json"), r#"{"code": "\ud800"}"#)
            .expect(400, "invalid_request"),
    ]);

    // --- POST /v1/shows/{id}/queue (no body) ------------------------------------------------------------------------------
    let queue = |show_id: &str, token: Option<&str>| Case {
        name: format!("POST /v1/shows/{show_id}/queue"),
        method: Method::POST,
        path: format!("/v1/shows/{show_id}/queue"),
        token: token.map(str::to_string),
        headers: Vec::new(),
        body: None,
        statuses: Vec::new(),
        code: None,
        field: None,
        own_connection: false,
    };
    cases.extend([
        Case {
            name: "queue — unknown show".into(),
            ..queue("shw_does_not_exist", Some(customer))
        }
        .expect(404, "not_found"),
        Case {
            name: "queue — no token".into(),
            ..queue(&fixture.show_id, None)
        }
        .expect(401, "unauthorized"),
        Case {
            name: "queue — a 2 MB body".into(),
            ..queue(&fixture.show_id, Some(customer))
        }
        .raw(Some("application/json"), padded.to_string())
        .expect(413, "payload_too_large")
        .own_connection(),
    ]);

    // --- queries and paths ------------------------------------------------------------------------------------------
    let get = |path: &str, token: Option<&str>| Case {
        name: format!("GET {path}"),
        method: Method::GET,
        path: path.to_string(),
        token: token.map(str::to_string),
        headers: Vec::new(),
        body: None,
        statuses: Vec::new(),
        code: None,
        field: None,
        own_connection: false,
    };
    for limit in ["0", "101", "-1", "abc", "99999999999999999999"] {
        cases.push(get(&format!("/v1/events?limit={limit}"), None).invalid("limit"));
    }
    cases.extend([
        get("/v1/events?cursor=%25%25garbage%25%25", None).expect(400, "invalid_request"),
        get("/v1/events?from=notadate", None).invalid("from"),
        get("/v1/venues?limit=0", None).invalid("limit"),
        get("/v1/bookings?limit=101", Some(customer)).invalid("limit"),
        get("/v1/audit?limit=0", admin).invalid("limit"),
        get("/v1/users?limit=101", admin).invalid("limit"),
        get("/v1/shows/shw_does_not_exist", None).expect(404, "not_found"),
        get("/v1/shows/shw_does_not_exist/seats", None).expect(404, "not_found"),
        get("/v1/venues/ven_does_not_exist", None).expect(404, "not_found"),
        get("/v1/events/evt_does_not_exist", None).expect(404, "not_found"),
        get("/v1/holds/hld_does_not_exist", Some(customer)).expect(404, "not_found"),
        get(
            &format!("/v1/holds/{}", world.others_hold_id),
            Some(customer),
        )
        .expect(404, "not_found"),
        get("/v1/bookings/bkg_does_not_exist", Some(customer)).expect(404, "not_found"),
        Case {
            method: Method::DELETE,
            name: "DELETE /v1/holds/hld_does_not_exist".into(),
            ..get("/v1/holds/hld_does_not_exist", Some(customer))
        }
        .expect(404, "not_found"),
        Case {
            method: Method::DELETE,
            name: "DELETE another user's hold".into(),
            ..get(
                &format!("/v1/holds/{}", world.others_hold_id),
                Some(customer),
            )
        }
        .expect(404, "not_found"),
    ]);
    cases
}

/// Runs the whole table; then checks that nothing was written and that the
/// service still works.
async fn bad_input_table(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = build_world(&app).await;
    let show_path = format!("/v1/shows/{}", world.fixture.show_id);
    let event_path = format!("/v1/events/{}", world.fixture.event_id);
    let map_before = app.seat_map(&world.fixture.show_id).await;
    let show_before = app.get(&show_path, None).await.expect(200, "show").clone();
    let event_before = app
        .get(&event_path, None)
        .await
        .expect(200, "event")
        .clone();
    let users_before = app.list_all("/v1/users", app.admin()).await.len();

    let cases = table(&app, &world);
    let mut failures = Vec::new();
    for case in &cases {
        match case.run(&app.api).await {
            Ok(resp) => {
                let violations = problem_violations(&resp, &case.statuses, case.code, case.field);
                if !violations.is_empty() {
                    failures.push(format!(
                        "{}\n    wrong: {}\n    answer: {}",
                        case.name,
                        violations.join("; "),
                        resp
                    ));
                }
            }
            Err(error) => failures.push(format!("{}\n    no answer: {error}", case.name)),
        }
    }
    eprintln!(
        "bad_input_table: {} cases, {} failures",
        cases.len(),
        failures.len()
    );

    // Still alive and nothing half-written.
    let mut state = Vec::new();
    let health = app.get("/healthz", None).await;
    if health.status() != 200 {
        state.push(format!("/healthz after the table: {health}"));
    }
    let venues = app.list_all("/v1/venues", None).await;
    let venue_ids: BTreeSet<&str> = venues.iter().filter_map(|v| v["id"].as_str()).collect();
    if venue_ids != BTreeSet::from([world.fixture.venue_id.as_str()]) {
        state.push(format!("rejected venues were written: {venues:?}"));
    }
    let events = app.list_all("/v1/events", None).await;
    if events.len() != 1 {
        state.push(format!("rejected events were written: {events:?}"));
    }
    let users_after = app.list_all("/v1/users", app.admin()).await.len();
    if users_after != users_before {
        state.push(format!(
            "rejected registrations were written: {users_before} users before, {users_after} after"
        ));
    }
    let map_after = app.seat_map(&world.fixture.show_id).await;
    if seat_statuses(&map_after) != seat_statuses(&map_before)
        || map_after["summary"] != map_before["summary"]
    {
        state.push(format!(
            "the seat map changed:\n  before {}\n  after {}",
            map_before["summary"], map_after["summary"]
        ));
    }
    let show_after = app.get(&show_path, None).await.body;
    if show_after != show_before {
        state.push(format!(
            "the show changed:\n  before {show_before}\n  after {show_after}"
        ));
    }
    let event_after = app.get(&event_path, None).await.body;
    if event_after != event_before {
        state.push(format!(
            "the event changed:\n  before {event_before}\n  after {event_after}"
        ));
    }
    let spare = app.get("/v1/me", Some(&world.spare.token)).await;
    if spare.body["role"] != "customer" {
        state.push(format!("the spare user's role changed: {spare}"));
    }
    let big = app
        .get(
            &format!("/v1/bookings/{}", world.big_cancel_booking_id),
            Some(&world.customer.token),
        )
        .await;
    if big.body["status"] != "CONFIRMED" {
        state.push(format!(
            "the booking cancelled with a 2 MB body changed: {big}"
        ));
    }
    let hold = app.get_hold(&world.customer.token, &world.hold_id).await;
    if hold.body["status"] != "ACTIVE" {
        state.push(format!("the table's hold changed: {hold}"));
    }

    // A normal flow still works.
    let book = app
        .book(
            &world.customer.token,
            &world.hold_id,
            &unique_key(),
            "tok_visa",
        )
        .await;
    if book.status() != 201 {
        state.push(format!("booking the table's hold afterwards: {book}"));
    }
    let scan = app
        .post(
            "/v1/checkin",
            app.admin(),
            &json!({"code": world.ticket_code}),
        )
        .await;
    if scan.status() != 200 {
        state.push(format!(
            "the table's ticket was checked in by a rejected request, or check-in broke: {scan}"
        ));
    }
    let fresh = app
        .hold_seats(
            &world.other.token,
            &world.fixture.show_id,
            &["A-1-1", "A-1-2"],
        )
        .await;
    if fresh.status() != 201 {
        state.push(format!("a fresh hold afterwards: {fresh}"));
    }

    assert!(
        failures.is_empty() && state.is_empty(),
        "{} of {} bad-input cases answered against the contract:\n\n{}\n\nstate after the table:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n"),
        if state.is_empty() { "ok".to_string() } else { state.join("\n") }
    );
}

/// Valid but unusual Unicode is stored and returned exactly; NUL is either
/// refused with a problem or stored exactly — never a 5xx.
async fn unicode_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let title = "Konzert 🎻 \u{200F}שלום\u{200E} — ünïcödé ✓ 𝄞";
    let event_id = app.create_event(title).await;
    let resp = app.get(&format!("/v1/events/{event_id}"), None).await;
    assert_eq!(
        resp.expect(200, "event")["title"],
        title,
        "the title round-trips: {resp}"
    );

    let name = "Zoë 🎫 \u{202E}evil\u{202C} 李";
    let email = unique_email();
    let resp = app.register(&email, USER_PASSWORD, name).await;
    let token = resp.expect(201, "register with a Unicode name")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = app.get("/v1/me", Some(&token)).await;
    assert_eq!(
        resp.expect(200, "me")["name"],
        name,
        "the name round-trips: {resp}"
    );

    let venue_name = "Sálá 🏟️ Ωmega";
    let venue_id = app
        .create_venue(&venue_layout(venue_name, 1, 2, None))
        .await;
    let resp = app.get(&format!("/v1/venues/{venue_id}"), None).await;
    assert_eq!(
        resp.expect(200, "venue")["name"],
        venue_name,
        "the venue name round-trips: {resp}"
    );

    for (path, body, read_back) in [
        (
            "/v1/events",
            json!({"title": "Nul\u{0}Byte", "description": "d", "performer": "p", "genre": "rock", "tags": []}),
            "title",
        ),
        (
            "/v1/events",
            json!({"title": "tag", "description": "Nul\u{0}in description", "performer": "p", "genre": "rock", "tags": ["a\u{0}b"]}),
            "description",
        ),
    ] {
        let resp = app.post(path, app.admin(), &body).await;
        match resp.status() {
            201 => {
                let id = id_of(&resp.body, &resp);
                let stored = app.get(&format!("{path}/{id}"), None).await;
                assert_eq!(
                    stored.body[read_back], body[read_back],
                    "a NUL that is accepted is stored exactly: {stored}"
                );
            }
            _ => {
                let violations = problem_violations(&resp, &[400], Some("invalid_request"), None);
                assert!(
                    violations.is_empty(),
                    "NUL is either stored exactly or 400 invalid_request: {violations:?} {resp}"
                );
            }
        }
    }
    let resp = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"email": unique_email(), "password": USER_PASSWORD, "name": "a\u{0}b"}),
        )
        .await;
    match resp.status() {
        201 => {
            let token = resp.body["access_token"].as_str().unwrap().to_string();
            assert_eq!(
                app.get("/v1/me", Some(&token)).await.body["name"],
                "a\u{0}b",
                "NUL name stored exactly"
            );
        }
        _ => {
            let violations = problem_violations(&resp, &[400], Some("invalid_request"), None);
            assert!(violations.is_empty(), "NUL name: {violations:?} {resp}");
        }
    }
    app.get("/healthz", None).await.expect(200, "healthz");
}

/// Random mutations of valid bodies (wrong types, missing keys, extreme
/// values) never get a 5xx or a non-problem error, and never a hang.
async fn mutated_bodies(backend: Backend) {
    const MUTATIONS_PER_ROUTE: usize = 40;
    let app = TestApp::spawn(backend).await;
    let fixture = app
        .fixture(2, 10, Some(20), json!({"max_tickets_per_user": 100}))
        .await;
    let user = app.register_user().await;
    let seed: u64 = rand::random();
    eprintln!("mutated_bodies seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let routes: Vec<(String, Option<&str>, Value)> = vec![
        (
            "/v1/venues".into(),
            app.admin(),
            venue_layout("Fuzz Hall", 2, 3, Some(5)),
        ),
        (
            "/v1/events".into(),
            app.admin(),
            json!({"title": "Fuzz", "description": "d", "performer": "p", "genre": "rock", "tags": ["a"]}),
        ),
        (
            format!("/v1/events/{}/shows", fixture.event_id),
            app.admin(),
            show_body(
                &fixture.venue_id,
                json!({"hold_ttl_seconds": 60, "max_tickets_per_user": 4}),
            ),
        ),
        (
            "/v1/holds".into(),
            Some(user.token.as_str()),
            json!({"show_id": fixture.show_id, "seat_ids": ["A-1-1", "A-1-2"]}),
        ),
        (
            "/v1/holds".into(),
            Some(user.token.as_str()),
            json!({"show_id": fixture.show_id, "section": STANDING_SECTION, "quantity": 2}),
        ),
        (
            "/v1/auth/register".into(),
            None,
            json!({"email": "fuzz@example.test", "password": USER_PASSWORD, "name": "Fuzz"}),
        ),
    ];
    let mut failures = Vec::new();
    for (path, token, valid) in routes {
        for _ in 0..MUTATIONS_PER_ROUTE {
            let mut body = valid.clone();
            let description = mutate(&mut body, &mut rng);
            let request = app
                .request(Method::POST, &path)
                .maybe_token(token)
                .json(&body);
            let resp = match tokio::time::timeout(CASE_TIMEOUT, request.try_send()).await {
                Ok(Ok(resp)) => resp,
                Ok(Err(error)) => {
                    failures.push(format!("POST {path} with {description}: {error}"));
                    continue;
                }
                Err(_) => {
                    failures.push(format!(
                        "POST {path} with {description}: no answer within {CASE_TIMEOUT:?}"
                    ));
                    continue;
                }
            };
            if resp.status.is_success() {
                continue;
            }
            let violations = problem_violations(&resp, &[], None, None);
            if !violations.is_empty() {
                failures.push(format!(
                    "POST {path} with {description}: {}\n    answer: {resp}",
                    violations.join("; ")
                ));
            }
        }
    }
    app.get("/healthz", None)
        .await
        .expect(200, "healthz after the fuzzing");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} mutated requests answered against the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Replaces one random leaf (or removes one key) of `body`; returns what it did.
fn mutate(body: &mut Value, rng: &mut StdRng) -> String {
    let mut paths = Vec::new();
    collect_paths(body, &mut Vec::new(), &mut paths);
    let path = paths[rng.gen_range(0..paths.len())].clone();
    let replacements = [
        json!(null),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-9.9e300),
        json!(""),
        json!("x".repeat(5000)),
        json!("\u{0}"),
        json!("\u{202E}🎫"),
        json!([]),
        json!({}),
        json!(true),
        json!([null, 1, "a"]),
    ];
    let target = path.iter().fold(&mut *body, |value, key| match key {
        Key::Field(name) => &mut value[name.as_str()],
        Key::Index(i) => &mut value[*i],
    });
    if rng.gen_bool(0.2) {
        *target = Value::Null;
        // Remove the key entirely when the parent is an object.
        if let Some(Key::Field(name)) = path.last() {
            let parent = path[..path.len() - 1]
                .iter()
                .fold(&mut *body, |value, key| match key {
                    Key::Field(name) => &mut value[name.as_str()],
                    Key::Index(i) => &mut value[*i],
                });
            if let Some(object) = parent.as_object_mut() {
                object.remove(name);
            }
            return format!("{path:?} removed");
        }
    }
    let replacement = replacements[rng.gen_range(0..replacements.len())].clone();
    let shown = replacement.to_string().chars().take(40).collect::<String>();
    *target = replacement;
    format!("{path:?} = {shown}")
}

#[derive(Clone, Debug)]
enum Key {
    Field(String),
    Index(usize),
}

fn collect_paths(value: &Value, prefix: &mut Vec<Key>, out: &mut Vec<Vec<Key>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Key::Field(key.clone()));
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(Key::Index(index));
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}
