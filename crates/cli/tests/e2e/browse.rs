//! Browsing: event search filters and the live seat-map stream (SSE).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::common::*;

both_backends!(search_filters);

/// The ids of `GET path`'s items.
async fn ids(app: &TestApp, path: &str) -> Result<BTreeSet<String>, String> {
    let resp = app.get(path, None).await;
    if resp.status() != 200 {
        return Err(resp.to_string());
    }
    Ok(resp.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// `q` (full text with typos and prefixes, see `search.rs` for more),
/// `genre`, `city`, `from` and `to`.
async fn search_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let berlin = app
        .create_venue(&venue_layout("Berlin Hall", 1, 5, None))
        .await;
    let mut munich_layout = venue_layout("Munich Hall", 1, 5, None);
    munich_layout["city"] = json!("Munich");
    munich_layout["timezone"] = json!("Europe/Berlin");
    let munich = app.create_venue(&munich_layout).await;
    let moonlight = app
        .create_event_with(&json!({"title": "Moonlight Quartet", "description": "Strings", "performer": "The Moonlighters", "genre": "classical", "tags": []}))
        .await;
    let thunder = app
        .create_event_with(&json!({"title": "Thunder Brass Parade", "description": "Loud", "performer": "Brass Band", "genre": "jazz", "tags": []}))
        .await;
    let soon = rfc3339(Utc::now() + chrono::Duration::days(10));
    let later = rfc3339(Utc::now() + chrono::Duration::days(40));
    app.create_show(
        &moonlight,
        &berlin,
        json!({"starts_at": soon, "prices": prices_for(true, false)}),
    )
    .await;
    app.create_show(
        &thunder,
        &munich,
        json!({"starts_at": later, "prices": prices_for(true, false)}),
    )
    .await;
    let middle = encode_query(&rfc3339(Utc::now() + chrono::Duration::days(20)));

    let both = BTreeSet::from([moonlight.clone(), thunder.clone()]);
    let mut failures = Vec::new();
    let only = |id: &String| BTreeSet::from([id.clone()]);
    for (path, expected) in [
        ("/v1/events?q=moonlight".to_string(), only(&moonlight)),
        ("/v1/events?q=MOONLI".to_string(), only(&moonlight)),
        ("/v1/events?q=moonlihgt".to_string(), only(&moonlight)),
        ("/v1/events?q=thunder%20brass".to_string(), only(&thunder)),
        ("/v1/events?genre=jazz".to_string(), only(&thunder)),
        ("/v1/events?city=Munich".to_string(), only(&thunder)),
        ("/v1/events?city=Berlin".to_string(), only(&moonlight)),
        (format!("/v1/events?from={middle}"), only(&thunder)),
        (format!("/v1/events?to={middle}"), only(&moonlight)),
        ("/v1/events".to_string(), both.clone()),
    ] {
        // The search index may be fed asynchronously: give each query a few
        // seconds, and report every filter that is wrong, not just the first.
        let started = std::time::Instant::now();
        loop {
            let found = ids(&app, &path).await;
            if found.as_ref() == Ok(&expected) {
                break;
            }
            if started.elapsed() > Duration::from_secs(5) {
                failures.push(format!("GET {path}: expected {expected:?}, got {found:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert!(
        failures.is_empty(),
        "moonlight = {moonlight}, thunder = {thunder}; wrong searches:\n{}",
        failures.join("\n")
    );
    let none = ids(&app, "/v1/events?q=zzzyyyxxxqqq")
        .await
        .expect("search without hits");
    assert!(none.is_empty(), "a query matching nothing: {none:?}");

    // An edit is searchable.
    app.patch(
        &format!("/v1/events/{thunder}"),
        app.admin(),
        &json!({"title": "Lightning Horns"}),
    )
    .await
    .expect(200, "rename");
    poll_until(
        "the renamed event to be found by its new title",
        Duration::from_secs(10),
        Duration::from_millis(250),
        || async {
            let found = ids(&app, "/v1/events?q=lightning").await?;
            if found == only(&thunder) {
                Ok(())
            } else {
                Err(format!("{found:?}"))
            }
        },
    )
    .await;
}
