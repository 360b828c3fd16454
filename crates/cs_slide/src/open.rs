//! Choosing the reader for a file by its content: OpenSlide for the vendor formats it knows, the
//! pure-Rust TIFF reader for OME-TIFFs, SubIFD pyramids and 16-bit images (which OpenSlide 3.4
//! sees only in part), and for any TIFF OpenSlide refuses; the DICOM reader for DICOM WSI
//! (OpenSlide 4 reads it too, and takes over when ours cannot); the zarr reader for a folder that
//! is an OME-NGFF multiscale image.

use std::path::Path;
use std::sync::Arc;

use crate::dicom_backend::is_dicom_file;
use crate::tiff_backend::{is_tiff_file, needs_tiff_backend, scan_file};
use crate::{DicomSource, NgffSource, OpenSlideSource, SlideError, SlideSource, TiffSource, is_ngff_image};

/// Opens an image with the reader that sees it whole.
pub fn open_slide(path: impl AsRef<Path>) -> Result<Arc<dyn SlideSource>, SlideError> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(SlideError::NotFound {
            path: path.to_path_buf(),
        });
    }
    if is_ngff_image(path) {
        return Ok(Arc::new(NgffSource::open(path)?));
    }
    if path.is_dir() {
        return Err(SlideError::CannotOpen {
            path: path.to_path_buf(),
            reason: "this is a folder, neither a slide file nor an OME-NGFF (zarr) image".to_owned(),
        });
    }
    if is_dicom_file(path) {
        return match DicomSource::open(path) {
            Ok(source) => Ok(Arc::new(source)),
            Err(dicom_error) if openslide_reads_dicom() => match OpenSlideSource::open(path) {
                Ok(source) => Ok(Arc::new(source)),
                Err(_) => Err(dicom_error),
            },
            Err(dicom_error) => Err(dicom_error),
        };
    }
    let tiff = is_tiff_file(path);
    if tiff {
        let mut scan = scan_file(path)?;
        if let Some(reason) = needs_tiff_backend(path, &mut scan)? {
            log::info!("{}: {reason}, read with the TIFF reader", path.display());
            return Ok(Arc::new(TiffSource::from_scan(path, scan)?));
        }
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
