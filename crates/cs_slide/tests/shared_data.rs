//! OpenSlide backend against the real slides in ../shared/data/wsi.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use cs_slide::{OpenSlideSource, SlideError, SlideSource, TilePyramid};
use cs_testdata::shared_file;

#[test]
fn cmu_svs_metadata() {
    let Some(path) = shared_file("wsi/CMU-1-Small-Region.svs") else {
        return;
    };
    let slide = OpenSlideSource::open(&path).unwrap();
    let meta = slide.metadata();
    assert_eq!(meta.vendor, "aperio");
    assert_eq!(meta.levels.len(), 1);
    assert_eq!(meta.level0_size_px(), (2220, 2967));
    assert_eq!(meta.levels[0].downsample, 1.0);
    let mpp = meta.mpp().unwrap();
    assert!((mpp - 0.499).abs() < 1e-3, "mpp {mpp}");
    assert_eq!(meta.objective_power, Some(20.0));
    for name in ["label", "macro", "thumbnail"] {
        assert!(
            meta.associated_images.iter().any(|n| n == name),
            "{name} missing: {:?}",
            meta.associated_images
        );
    }
    assert_eq!(meta.properties.get("aperio.AppMag").map(String::as_str), Some("20"));

    let thumbnail = slide.read_associated_image("thumbnail").unwrap();
    assert!(thumbnail.width > 0 && thumbnail.height > 0);
    assert_eq!(
        thumbnail.pixels.len(),
        (thumbnail.width * thumbnail.height * 4) as usize
    );
    let err = slide.read_associated_image("nonexistent").unwrap_err();
    assert!(matches!(err, SlideError::NoSuchAssociatedImage { .. }));

    // Tissue is pinkish H&E: the centre tile is opaque and not pure white.
    let tile = slide.read_region((1000, 1400), 0, 64, 64).unwrap();
    let mean: f64 = tile
        .pixels
        .chunks(4)
        .map(|p| f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2]))
        .sum::<f64>()
        / (64.0 * 64.0 * 3.0);
    assert!(tile.pixels.chunks(4).all(|p| p[3] == 255));
    assert!(mean < 240.0, "mean intensity {mean}");

    let overview = slide.overview(256).unwrap();
    assert!(overview.width.max(overview.height) <= 256);
}

#[test]
fn cmu_pyramid_tiff_has_four_levels() {
    let Some(path) = shared_file("wsi/CMU-1-Small-Region.pyramid.tiff") else {
        return;
    };
    let slide = OpenSlideSource::open(&path).unwrap();
    let meta = slide.metadata();
    assert_eq!(meta.vendor, "generic-tiff");
    assert_eq!(meta.levels.len(), 4);
    assert_eq!(meta.level0_size_px(), (2220, 2967));
    for (i, level) in meta.levels.iter().enumerate() {
        let expected = f64::from(1u32 << i);
        assert!((level.downsample / expected - 1.0).abs() < 0.01, "level {i}: {level:?}");
    }
    // Every tile of the coarsest level reads.
    let pyramid = TilePyramid::new(meta.levels.clone(), 256);
    let coarsest = pyramid.coarsest_level();
    let (cols, rows) = pyramid.grid(coarsest);
    for row in 0..rows {
        for col in 0..cols {
            let (pos, level, w, h) = pyramid.read_args(cs_slide::TileKey {
                level: coarsest,
                col,
                row,
            });
            let tile = slide.read_region(pos, level, w, h).unwrap();
            assert_eq!((tile.width, tile.height), (w, h));
        }
    }
}

#[test]
fn unopenable_tiff_gives_a_clear_error() {
    let Some(path) = shared_file("wsi/openslide-fixtures/unopenable.tiff") else {
        return;
    };
    let err = OpenSlideSource::open(&path).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("unopenable.tiff"), "{message}");
    assert!(
        matches!(err, SlideError::CannotOpen { .. } | SlideError::Unsupported { .. }),
        "{err:?}"
    );
}

#[test]
fn unreadable_svs_opens_but_reads_fail_with_a_message() {
    let Some(path) = shared_file("wsi/openslide-fixtures/unreadable.svs") else {
        return;
    };
    let slide = OpenSlideSource::open(&path).unwrap();
    let (w, h) = slide.metadata().level0_size_px();
    let err = slide
        .read_region((0, 0), 0, w.min(256) as u32, h.min(256) as u32)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SlideError::ReadFailed { .. }), "{err:?}");
    assert!(message.contains("unreadable.svs"), "{message}");
    // The handle stays usable for metadata, and later reads keep failing cleanly (no panic).
    assert!(slide.read_region((0, 0), 0, 16, 16).is_err());
    assert!(!slide.metadata().levels.is_empty());
}

#[test]
fn boxes_tiff_pixels_equal_boxes_png() {
    let (Some(tiff), Some(png)) = (
        shared_file("wsi/openslide-fixtures/boxes.tiff"),
        shared_file("wsi/openslide-fixtures/boxes.png"),
    ) else {
        return;
    };
    let slide = OpenSlideSource::open(&tiff).unwrap();
    let expected = image::open(&png).unwrap().to_rgba8();
    let (w, h) = expected.dimensions();
    let (sw, sh) = slide.metadata().level0_size_px();
    assert_eq!((u64::from(w), u64::from(h)), (sw, sh));
    let got = slide.read_region((0, 0), 0, w, h).unwrap();
    assert_eq!(got.pixels.len(), expected.as_raw().len());
    let differing = got.pixels.iter().zip(expected.as_raw()).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} bytes differ");
    assert_eq!(slide.metadata().levels.len(), 4);
}

#[test]
fn folder_and_text_file_are_refused_with_their_path() {
    let dir = std::env::temp_dir().join(format!("cs_slide_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = OpenSlideSource::open(&dir).unwrap_err();
    assert!(err.to_string().contains("folder"), "{err}");
    let text = dir.join("notes.svs");
    std::fs::write(&text, "this is not a slide").unwrap();
    let err = OpenSlideSource::open(&text).unwrap_err();
    assert!(err.to_string().contains("notes.svs"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
