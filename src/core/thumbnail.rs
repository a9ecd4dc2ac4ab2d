//! Thumbnails of inline images (PNG, JPEG, GIF, WebP), made by the server from an upload's bytes with
//! the `image` crate. Hostile input is the normal case here: the header's dimensions are checked before
//! anything is decoded (a decompression bomb is refused without allocating its pixels), the decoder runs
//! under `image::Limits` (dimensions and allocation), and the caller runs [`make`] on a blocking thread
//! behind a small semaphore (`chat::files`), where even a decoder panic only costs the thumbnail.
//!
//! A thumbnail fits in [`MAX_EDGE`] × [`MAX_EDGE`] (aspect ratio kept, never enlarged); it is a PNG when
//! the image has transparency, else a JPEG. The first frame of an animation is used.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The longest side of a thumbnail, in pixels.
pub const MAX_EDGE: u32 = 320;
/// Images wider or taller than this get no thumbnail.
pub const MAX_SOURCE_EDGE: u32 = 12_000;
/// Images with more pixels than this get no thumbnail (40 megapixels: 160 MB as RGBA8).
pub const MAX_SOURCE_PIXELS: u64 = 40_000_000;
/// What the decoder may allocate at once.
pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;
const JPEG_QUALITY: u8 = 80;

/// A thumbnail's encoded bytes and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Why no thumbnail was made (logged, never shown to a client: the file is kept either way).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not an image format with thumbnails")]
    Format,
    #[error("{0}×{1} is too large to decode")]
    TooLarge(u32, u32),
    #[error("cannot decode: {0}")]
    Decode(#[from] image::ImageError),
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SOURCE_EDGE);
    l.max_image_height = Some(MAX_SOURCE_EDGE);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, Refused> {
    let mut r = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    match r.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {}
        _ => return Err(Refused::Format),
    }
    r.limits(limits());
    Ok(r)
}

/// The thumbnail of the image `bytes` (CPU-bound: call it on a blocking thread).
pub fn make(bytes: &[u8]) -> Result<Made, Refused> {
    // The header first: the size the image claims, before any pixel is allocated.
    let (w, h) = reader(bytes)?.into_dimensions()?;
    if w == 0 || h == 0 || w > MAX_SOURCE_EDGE || h > MAX_SOURCE_EDGE || u64::from(w) * u64::from(h) > MAX_SOURCE_PIXELS
    {
        return Err(Refused::TooLarge(w, h));
    }
    let img = reader(bytes)?.decode()?;
    let img = if img.width() > MAX_EDGE || img.height() > MAX_EDGE { img.thumbnail(MAX_EDGE, MAX_EDGE) } else { img };
    let (width, height) = (img.width(), img.height());
    let mut out = Cursor::new(Vec::new());
    let content_type = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, ImageFormat::Png)?;
        "image/png"
    } else {
        let rgb = img.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(&rgb)?;
        "image/jpeg"
    };
    Ok(Made { bytes: out.into_inner(), content_type, width, height })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        }))
    }

    #[test]
    fn real_images_shrink_to_fit_and_decode_again() {
        for (format, alpha) in [(ImageFormat::Png, false), (ImageFormat::Jpeg, false), (ImageFormat::Gif, true)] {
            let src = encoded(gradient(800, 320), format);
            let t = make(&src).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((t.width, t.height), (320, 128), "{format:?}");
            let want = if alpha { ImageFormat::Png } else { ImageFormat::Jpeg };
            assert_eq!(image::guess_format(&t.bytes).unwrap(), want, "{format:?}");
            let back = image::load_from_memory(&t.bytes).unwrap();
            assert_eq!((back.width(), back.height()), (320, 128));
        }
        // Transparency stays: a PNG with alpha gives a PNG; a small image is not enlarged.
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(40, 90, image::Rgba([1, 2, 3, 4])));
        let t = make(&encoded(rgba, ImageFormat::Png)).unwrap();
        assert_eq!((t.content_type, t.width, t.height), ("image/png", 40, 90));
    }

    /// A PNG whose header claims `w` × `h` (valid CRC) followed by one small IDAT of zeros.
    fn claimed_png(w: u32, h: u32) -> Vec<u8> {
        let real = encoded(gradient(4, 4), ImageFormat::Png);
        let mut b = real.clone();
        b[16..20].copy_from_slice(&w.to_be_bytes());
        b[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&b[12..29]);
        b[29..33].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &byte in data {
            c ^= u32::from(byte);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn bombs_truncations_and_garbage_are_refused_without_panic() {
        // The header's size alone refuses it (the reader's limits or our own check), nothing decoded.
        let bomb = make(&claimed_png(100_000, 100_000));
        assert!(
            matches!(bomb, Err(Refused::TooLarge(..) | Refused::Decode(image::ImageError::Limits(_)))),
            "a bomb's header: {bomb:?}"
        );
        assert!(matches!(make(&claimed_png(10_000, 10_000)), Err(Refused::TooLarge(..))), "past the pixel budget");
        // Within the limits but its data is far too short: a decode error, not a panic.
        assert!(matches!(make(&claimed_png(3000, 3000)), Err(Refused::Decode(_))));
        let jpeg = encoded(gradient(300, 200), ImageFormat::Jpeg);
        // A truncated JPEG: the decoder fills what is missing (a partial thumbnail) or refuses; no panic.
        let _ = make(&jpeg[..jpeg.len() / 3]);
        let png = encoded(gradient(300, 200), ImageFormat::Png);
        assert!(make(&png[..png.len() / 2]).is_err(), "a truncated PNG");
        assert!(matches!(make(b"plain text, no image"), Err(Refused::Format)));
        assert!(make(b"\x89PNG\r\n\x1a\n").is_err());
        assert!(make(&[]).is_err());
        // Every prefix of a real image: refused or thumbnailed, never a panic.
        let gif = encoded(gradient(20, 10), ImageFormat::Gif);
        for n in (0..gif.len()).step_by(7) {
            let _ = make(&gif[..n]);
        }
    }
}
