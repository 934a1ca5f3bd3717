//! E-tickets as a PDF: one page per ticket with its QR code drawn as
//! vector squares (sharp at any zoom, no image codec), written by hand: a
//! PDF of text and filled rectangles is a few objects and an offset table.

use qrcode::{Color, EcLevel, QrCode};

/// A5 portrait in points (1/72 inch): a phone screen or half a sheet.
const PAGE_WIDTH_POINTS: f64 = 420.0;
const PAGE_HEIGHT_POINTS: f64 = 595.0;
const MARGIN_POINTS: f64 = 36.0;
/// The QR code's side on the page: about 7 cm, easy for any scanner.
const QR_SIDE_POINTS: f64 = 200.0;
const QUIET_ZONE_MODULES: usize = 4;
/// Characters of the ticket code per printed line at 6.5 pt Courier.
const CODE_CHARACTERS_PER_LINE: usize = 86;

/// One page: the lines above the code, the code itself.
pub struct TicketPage {
    pub heading: String,
    pub lines: Vec<String>,
    pub code: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the ticket: {0}")]
pub struct PdfError(String);

/// PDF text strings in the standard fonts are single bytes (WinAnsi):
/// Latin-1 passes, anything else becomes `?`; `(`, `)` and `\` are escaped.
fn pdf_text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                out.push(character as u8);
            }
            '\u{2014}' | '\u{2013}' => out.push(b'-'),
            c if (c as u32) >= 0x20 && (c as u32) < 0x7f => out.push(c as u8),
            c if (c as u32) >= 0xa0 && (c as u32) <= 0xff => out.push(c as u32 as u8),
            _ => out.push(b'?'),
        }
    }
    out
}

fn text_line(out: &mut Vec<u8>, font: &str, size: f64, x: f64, y: f64, text: &str) {
    out.extend_from_slice(format!("BT /{font} {size} Tf {x:.2} {y:.2} Td (").as_bytes());
    out.extend_from_slice(&pdf_text(text));
    out.extend_from_slice(b") Tj ET\n");
}

/// The page's drawing operators.
fn page_content(page: &TicketPage) -> Result<Vec<u8>, PdfError> {
    let qr = QrCode::with_error_correction_level(page.code.as_bytes(), EcLevel::M)
        .map_err(|error| PdfError(error.to_string()))?;
    let modules = qr.width();
    let module = QR_SIDE_POINTS / (modules + 2 * QUIET_ZONE_MODULES) as f64;
    let mut out = Vec::new();
    let mut y = PAGE_HEIGHT_POINTS - MARGIN_POINTS - 18.0;
    text_line(&mut out, "F1", 18.0, MARGIN_POINTS, y, &page.heading);
    for line in &page.lines {
        y -= 18.0;
        text_line(&mut out, "F2", 11.0, MARGIN_POINTS, y, line);
    }
    let left = (PAGE_WIDTH_POINTS - QR_SIDE_POINTS) / 2.0;
    let top = y - 24.0;
    out.extend_from_slice(b"0 g\n");
    for (index, color) in qr.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (column, row) = (index % modules, index / modules);
            let x = left + (column + QUIET_ZONE_MODULES) as f64 * module;
            let y = top - (row + QUIET_ZONE_MODULES + 1) as f64 * module;
            out.extend_from_slice(format!("{x:.3} {y:.3} {module:.3} {module:.3} re\n").as_bytes());
        }
    }
    out.extend_from_slice(b"f\n");
    let mut y = top - QR_SIDE_POINTS - 16.0;
    text_line(
        &mut out,
        "F2",
        9.0,
        MARGIN_POINTS,
        y,
        "Show this code at the door; it admits one person once.",
    );
    let characters: Vec<char> = page.code.chars().collect();
    for chunk in characters.chunks(CODE_CHARACTERS_PER_LINE) {
        y -= 9.0;
        text_line(
            &mut out,
            "F3",
            6.5,
            MARGIN_POINTS,
            y,
            &chunk.iter().collect::<String>(),
        );
    }
    Ok(out)
}

/// The whole document: catalog, page tree, three standard fonts, and a page
/// with its content stream per ticket.
pub fn tickets_pdf(pages: &[TicketPage]) -> Result<Vec<u8>, PdfError> {
    // Objects 1–5 are fixed; each page adds a page object and its stream.
    let first_page_object = 6;
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..pages.len())
        .map(|index| format!("{} 0 R", first_page_object + 2 * index))
        .collect();
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    for font in ["Helvetica-Bold", "Helvetica", "Courier"] {
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{font} /Encoding /WinAnsiEncoding >>"
            )
            .into_bytes(),
        );
    }
    for (index, page) in pages.iter().enumerate() {
        let content_object = first_page_object + 2 * index + 1;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH_POINTS} {PAGE_HEIGHT_POINTS}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >> /Contents {content_object} 0 R >>"
            )
            .into_bytes(),
        );
        let content = page_content(page)?;
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(&content);
        stream.extend_from_slice(b"endstream");
        objects.push(stream);
    }
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        pdf.extend_from_slice(object);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    Ok(pdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(code: &str) -> TicketPage {
        TicketPage {
            heading: "Rock (live) \\ night — Köln".into(),
            lines: vec!["Seat A-1-1".into()],
            code: code.into(),
        }
    }

    #[test]
    fn one_page_per_ticket_and_a_valid_offset_table() {
        let pdf = tickets_pdf(&[page("bx1.a"), page("bx1.b")]).expect("a PDF");
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.contains("/Count 2"));
        assert_eq!(text.matches("/Type /Page ").count(), 2);
        // Every offset in the table points at its object.
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        let table = &text[xref_at..];
        for (number, line) in table
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .enumerate()
        {
            let offset: usize = line[..10].parse().expect("an offset");
            assert!(
                pdf[offset..].starts_with(format!("{} 0 obj", number + 1).as_bytes()),
                "object {}",
                number + 1
            );
        }
    }

    #[test]
    fn text_is_escaped_and_single_byte() {
        assert_eq!(pdf_text("a(b)c\\"), b"a\\(b\\)c\\\\".to_vec());
        assert_eq!(pdf_text("Köln €"), vec![b'K', 0xf6, b'l', b'n', b' ', b'?']);
    }
}
