//! A ticket code as a QR code in a PNG image (e-mails, `qr.png`).

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module: 6 px makes a 300-ish px image for our codes,
/// sharp on a phone and easy for door scanners.
const PIXELS_PER_MODULE: usize = 6;
/// Light modules around the code, as the QR standard asks.
const QUIET_ZONE_MODULES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum QrImageError {
    #[error("the code does not fit in a QR code: {0}")]
    TooLong(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// The code as a black-on-white grayscale PNG.
pub fn qr_png(code: &str) -> Result<Vec<u8>, QrImageError> {
    let qr = QrCode::with_error_correction_level(code.as_bytes(), EcLevel::M)
        .map_err(|error| QrImageError::TooLong(error.to_string()))?;
    let modules = qr.width();
    let colors = qr.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * PIXELS_PER_MODULE;
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (index % modules, index / modules);
        let left = (x + QUIET_ZONE_MODULES) * PIXELS_PER_MODULE;
        let top = (y + QUIET_ZONE_MODULES) * PIXELS_PER_MODULE;
        for row in top..top + PIXELS_PER_MODULE {
            pixels[row * side + left..row * side + left + PIXELS_PER_MODULE].fill(0);
        }
    }
    let side_u32 = u32::try_from(side).map_err(|error| QrImageError::Png(error.to_string()))?;
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, side_u32, side_u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|error| QrImageError::Png(error.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|error| QrImageError::Png(error.to_string()))?;
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_becomes_a_png_with_the_png_signature() {
        let png = qr_png("bx1.some-signed-ticket-code").expect("a PNG");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn a_code_too_long_for_any_qr_version_is_an_error() {
        assert!(matches!(
            qr_png(&"x".repeat(5000)),
            Err(QrImageError::TooLong(_))
        ));
    }
}
