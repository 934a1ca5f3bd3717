//! Tickets drawn for a screen: the signed code as a QR code (SVG).

use maud::{html, Markup};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use super::layout::raw;

/// Side of a ticket's QR code on the page, in CSS pixels; big enough for a
/// door scanner at arm's length on a phone screen.
const QR_SIZE_PIXELS: u32 = 220;

/// The code as an inline SVG QR code, or the code in words if it cannot be
/// drawn (it is always short enough; the fallback keeps the page whole).
pub fn qr_svg(code: &str) -> Markup {
    match QrCode::with_error_correction_level(code.as_bytes(), EcLevel::M) {
        Ok(qr) => raw(qr
            .render::<svg::Color>()
            .min_dimensions(QR_SIZE_PIXELS, QR_SIZE_PIXELS)
            .quiet_zone(true)
            .build()),
        Err(_) => html! { code { (code) } },
    }
}
