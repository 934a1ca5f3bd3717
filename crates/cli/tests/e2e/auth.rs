//! Accounts, tokens, roles and pagination.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    register_and_login,
    tokens_and_roles,
    users_admin,
    pagination
);

async fn register_and_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email();
    let resp = app.post("/v1/auth/register", None, &json!({"email": email, "password": USER_PASSWORD, "name": "Ann", "phone": "+49 30 1234567"})).await;
    let body = resp.expect(201, "register");
    assert_eq!(body["user"]["email"], email.as_str(), "{resp}");
    assert_eq!(body["user"]["name"], "Ann", "{resp}");
    assert_eq!(body["user"]["phone"], "+49 30 1234567", "{resp}");
    assert_eq!(body["user"]["role"], "customer", "{resp}");
    assert!(
        body["user"]["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{resp}"
    );
    assert!(
        body["user"].get("password").is_none() && !resp.text.contains(USER_PASSWORD),
        "the password never comes back: {resp}"
    );
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let resp = app.get("/v1/me", Some(&token)).await;
    assert_eq!(
        resp.expect(200, "me with the register token")["email"],
        email.as_str(),
        "{resp}"
    );

    app.register(&email, "another-password-123", "Ann Again")
        .await
        .expect_problem(409, "email_taken", "duplicate email");

    let resp = app.login(&email, USER_PASSWORD).await;
    let body = resp.expect(200, "login");
    assert_eq!(body["token_type"], "Bearer", "{resp}");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0), "{resp}");
    app.login(&email, "wrong-password-123")
        .await
        .expect_problem(401, "invalid_credentials", "wrong password");
    app.login(&unique_email(), USER_PASSWORD)
        .await
        .expect_problem(401, "invalid_credentials", "unknown email");
    // The duplicate attempts changed nothing: the original password still works.
    app.login_token(&email, USER_PASSWORD).await;
}

/// Replaces a JWT's payload (keeping header and signature): a forgery.
fn with_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "the access token is a JWT: {token}");
    let mut payload: Value =
        serde_json::from_slice(&base64url_decode(parts[1]).expect("base64url payload"))
            .expect("JSON payload");
    edit(&mut payload);
    format!(
        "{}.{}.{}",
        parts[0],
        base64url_encode(payload.to_string().as_bytes()),
        parts[2]
    )
}

async fn tokens_and_roles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register_user().await;
    let layout = venue_layout("Forbidden Hall", 1, 5, None);

    let resp = app.post("/v1/venues", Some(&user.token), &layout).await;
    resp.expect_problem(403, "forbidden", "a customer creates a venue");
    app.post("/v1/venues", None, &layout).await.expect_problem(
        401,
        "unauthorized",
        "no token creates a venue",
    );
    app.post(
        "/v1/events",
        Some(&user.token),
        &json!({"title": "x", "description": "", "performer": "", "genre": "rock", "tags": []}),
    )
    .await
    .expect_problem(403, "forbidden", "a customer creates an event");
    app.get("/v1/users", Some(&user.token))
        .await
        .expect_problem(403, "forbidden", "a customer lists users");
    app.get("/v1/me", None)
        .await
        .expect_problem(401, "unauthorized", "/v1/me without a token");
    app.get("/v1/bookings", None).await.expect_problem(
        401,
        "unauthorized",
        "/v1/bookings without a token",
    );

    let header = base64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", user.token.split('.').nth(1).unwrap());
    let parts: Vec<&str> = user.token.split('.').collect();
    let bad_tokens = vec![
        ("garbage", "garbage".to_string()),
        ("empty-ish", "a.b.c".to_string()),
        (
            "truncated signature",
            user.token[..user.token.len() - 4].to_string(),
        ),
        ("no signature", format!("{}.{}.", parts[0], parts[1])),
        ("alg none", unsigned),
        (
            "role raised to admin",
            with_payload(&user.token, |p| p["role"] = json!("admin")),
        ),
        (
            "expired",
            with_payload(&user.token, |p| {
                p["exp"] = json!(1_000_000_000);
                p["iat"] = json!(999_999_000);
            }),
        ),
        (
            "other subject",
            with_payload(&user.token, |p| p["sub"] = json!("usr_someone_else")),
        ),
        (
            "signature of another token",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                app.admin_token.split('.').nth(2).unwrap()
            ),
        ),
    ];
    for (what, token) in bad_tokens {
        app.get("/v1/me", Some(&token)).await.expect_problem(
            401,
            "unauthorized",
            &format!("a {what} JWT"),
        );
        app.post("/v1/venues", Some(&token), &layout)
            .await
            .expect_problem(
                401,
                "unauthorized",
                &format!("a {what} JWT creates a venue"),
            );
    }
    let resp = app
        .request(reqwest::Method::GET, "/v1/me")
        .header("Authorization", &format!("Basic {}", user.token))
        .send()
        .await;
    resp.expect_problem(401, "unauthorized", "a non-Bearer Authorization header");
    // No venue was written by any of it.
    let venues = app.list_all("/v1/venues", None).await;
    assert!(
        venues.is_empty(),
        "no venue was created by rejected requests: {venues:?}"
    );
    // The real token still works.
    app.get("/v1/me", Some(&user.token))
        .await
        .expect(200, "the real token");
}

async fn users_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let users = app.register_users(3).await;
    let target = &users[1];

    let items = app
        .list_all(
            &format!("/v1/users?email={}", encode_query(&target.email)),
            app.admin(),
        )
        .await;
    assert_eq!(
        items.len(),
        1,
        "the email filter finds exactly one user: {items:?}"
    );
    assert_eq!(items[0]["id"], target.id.as_str());
    assert_eq!(items[0]["email"], target.email.as_str());
    let all = app.list_all("/v1/users", app.admin()).await;
    let ids: BTreeSet<&str> = all.iter().filter_map(|u| u["id"].as_str()).collect();
    assert!(
        users.iter().all(|u| ids.contains(u.id.as_str())),
        "all users are listed: {all:?}"
    );
    assert!(
        all.iter()
            .any(|u| u["email"] == ADMIN_EMAIL && u["role"] == "admin"),
        "the admin from the environment exists: {all:?}"
    );

    let resp = app
        .patch(
            &format!("/v1/users/{}", target.id),
            app.admin(),
            &json!({"role": "staff"}),
        )
        .await;
    let user = resp.expect(200, "make staff");
    assert_eq!(user["role"], "staff", "{resp}");
    assert_eq!(user["id"], target.id.as_str(), "{resp}");
    let token = app.login_token(&target.email, &target.password).await;
    assert_eq!(
        app.get("/v1/me", Some(&token)).await.body["role"],
        "staff",
        "the new token carries the new role"
    );
    app.post(
        "/v1/venues",
        Some(&token),
        &venue_layout("Staff Hall", 1, 1, None),
    )
    .await
    .expect_problem(403, "forbidden", "staff creates a venue");
    app.get("/v1/users", Some(&token))
        .await
        .expect_problem(403, "forbidden", "staff lists users");
    app.patch(
        &format!("/v1/users/{}", users[0].id),
        Some(&token),
        &json!({"role": "admin"}),
    )
    .await
    .expect_problem(403, "forbidden", "staff promotes someone");
    app.patch(
        &format!("/v1/users/{}", users[0].id),
        Some(&users[2].token),
        &json!({"role": "admin"}),
    )
    .await
    .expect_problem(403, "forbidden", "a customer promotes someone");
    let resp = app.get("/v1/me", Some(&users[0].token)).await;
    assert_eq!(
        resp.body["role"], "customer",
        "the refused promotions changed nothing: {resp}"
    );
}

async fn pagination(backend: Backend) {
    const EVENTS: usize = 25;
    let app = TestApp::spawn(backend).await;
    let mut created = BTreeSet::new();
    for i in 0..EVENTS {
        created.insert(app.create_event(&format!("Paged Event {i}")).await);
    }

    for limit in ["0", "101", "-1", "abc"] {
        let resp = app.get(&format!("/v1/events?limit={limit}"), None).await;
        let violations = problem_violations(&resp, &[400], Some("invalid_request"), Some("limit"));
        assert!(
            violations.is_empty(),
            "GET /v1/events?limit={limit}: {violations:?} {resp}"
        );
    }
    for path in [
        "/v1/venues?limit=0",
        "/v1/users?limit=101",
        "/v1/bookings?limit=0",
        "/v1/audit?limit=101",
    ] {
        let resp = app.get(path, app.admin()).await;
        resp.expect_problem(400, "invalid_request", path);
    }

    let resp = app.get("/v1/events", None).await;
    let page = resp.expect(200, "default page");
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(20),
        "the default limit is 20: {resp}"
    );
    assert!(page["next_cursor"].is_string(), "more pages: {resp}");

    let resp = app.get("/v1/events?limit=100", None).await;
    let page = resp.expect(200, "limit 100");
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(EVENTS),
        "{resp}"
    );
    assert!(
        page["next_cursor"].is_null(),
        "one page holds everything: {resp}"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/events?limit=7&cursor={}", encode_query(c)),
            None => "/v1/events?limit=7".to_string(),
        };
        let resp = app.get(&path, None).await;
        let page = resp.expect(200, &path);
        let items = page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("items: {resp}"));
        assert!(items.len() <= 7, "a page never passes its limit: {resp}");
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        pages += 1;
        assert!(pages <= 10, "paging does not end: {seen:?}");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice: {seen:?}");
    assert_eq!(unique, created, "every event exactly once");
    assert!(
        pages >= 4,
        "25 events in pages of 7 need 4 pages, got {pages}"
    );
}
