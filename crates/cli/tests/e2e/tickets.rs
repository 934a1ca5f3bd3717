//! Tickets as documents: `GET /v1/bookings/{id}/tickets.pdf` (one page per
//! ticket) and `GET /v1/tickets/{id}/qr.png` (a QR code that decodes to the
//! ticket's code), for the booking's owner or an admin only.

use serde_json::json;

use crate::common::*;

both_backends!(ticket_documents);

async fn raw_get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET")
}

fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        info.width as usize,
        info.height as usize,
        |x, y| pixels[y * info.line_size + x],
    );
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("it decodes").1
}

async fn ticket_documents(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 5, Some(10), json!({})).await;
    let user = app.register_user().await;
    let stranger = app.register_user().await;
    let held = app
        .hold(
            &user.token,
            &json!({"show_id": fixture.show_id, "seat_ids": ["A-1-1", "A-1-2"]}),
        )
        .await;
    let hold_id = id_of(held.expect(201, "hold"), &held);
    let booked = app
        .book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking = booked.expect(201, "book").clone();
    let booking_id = id_of(&booking, &booking);

    let pdf_path = format!("/v1/bookings/{booking_id}/tickets.pdf");
    let response = raw_get(&app, &pdf_path, Some(&user.token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let pdf = response.bytes().await.expect("the PDF");
    let text = String::from_utf8_lossy(&pdf);
    assert!(
        text.starts_with("%PDF-1.4") && text.trim_end().ends_with("%%EOF"),
        "a PDF"
    );
    assert_eq!(
        text.matches("/Type /Page ").count(),
        2,
        "one page per ticket"
    );
    assert!(
        text.contains("(Seat A-1-1)") && text.contains("(Seat A-1-2)"),
        "the seats are printed"
    );
    assert_eq!(
        raw_get(&app, &pdf_path, app.admin()).await.status(),
        200,
        "an admin may"
    );
    assert_eq!(
        raw_get(&app, &pdf_path, Some(&stranger.token))
            .await
            .status(),
        404,
        "nobody else"
    );
    assert_eq!(raw_get(&app, &pdf_path, None).await.status(), 401);
    assert_eq!(
        raw_get(
            &app,
            "/v1/bookings/bkg_nonsense/tickets.pdf",
            Some(&user.token)
        )
        .await
        .status(),
        404
    );

    for ticket in booking["tickets"].as_array().expect("tickets") {
        let ticket_id = ticket["id"].as_str().expect("a ticket id");
        let path = format!("/v1/tickets/{ticket_id}/qr.png");
        let response = raw_get(&app, &path, Some(&user.token)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        let png = response.bytes().await.expect("the PNG");
        assert_eq!(decode_qr(&png), ticket["code"].as_str().expect("a code"));
        assert_eq!(
            raw_get(&app, &path, Some(&stranger.token)).await.status(),
            404
        );
    }
    assert_eq!(
        raw_get(&app, "/v1/tickets/tkt_nonsense/qr.png", Some(&user.token))
            .await
            .status(),
        404
    );
    // Not even UTF-8: a client error in the usual shape.
    let response = raw_get(&app, "/v1/tickets/%00%ff/qr.png", Some(&user.token)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}
