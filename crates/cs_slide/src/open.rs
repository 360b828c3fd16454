//! Choosing the reader for a file by its content: OpenSlide for the vendor formats it knows, the
//! pure-Rust TIFF reader for OME-TIFFs, SubIFD pyramids and 16-bit images (which OpenSlide 3.4
//! sees only in part), and for any TIFF OpenSlide refuses.

use std::path::Path;
use std::sync::Arc;

use crate::tiff_backend::{is_tiff_file, needs_tiff_backend};
use crate::{OpenSlideSource, SlideError, SlideSource, TiffSource};

/// Opens an image with the reader that sees it whole.
pub fn open_slide(path: impl AsRef<Path>) -> Result<Arc<dyn SlideSource>, SlideError> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(SlideError::NotFound {
            path: path.to_path_buf(),
        });
    }
    if path.is_dir() {
        return Err(SlideError::CannotOpen {
            path: path.to_path_buf(),
            reason: "this is a folder, not a slide file".to_owned(),
        });
    }
    let tiff = is_tiff_file(path);
    if tiff && let Some(reason) = needs_tiff_backend(path)? {
        log::info!("{}: {reason}, read with the TIFF reader", path.display());
        return Ok(Arc::new(TiffSource::open(path)?));
    }
    match OpenSlideSource::open(path) {
        Ok(source) => Ok(Arc::new(source)),
        Err(openslide_error) if tiff => match TiffSource::open(path) {
            Ok(source) => Ok(Arc::new(source)),
            // OpenSlide's reason is usually the more telling one for a vendor TIFF.
            Err(tiff_error) => {
                log::info!("{tiff_error}");
                Err(openslide_error)
            }
        },
        Err(SlideError::Unsupported { path }) if is_dicom_file(&path) => Err(SlideError::CannotOpen {
            reason: format!(
                "DICOM whole-slide images need OpenSlide 4 or later; this system has OpenSlide {}",
                OpenSlideSource::library_version()
            ),
            path,
        }),
        Err(error) => Err(error),
    }
}

/// Whether the OpenSlide linked in can read DICOM WSI (version 4 on).
pub fn openslide_reads_dicom() -> bool {
    let version = OpenSlideSource::library_version();
    version
        .split('.')
        .next()
        .and_then(|major| major.trim().parse::<u32>().ok())
        .is_some_and(|major| major >= 4)
}

/// DICOM Part 10: 128 bytes of preamble, then `DICM`.
fn is_dicom_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..132] == b"DICM"
}
