//! The pure-Rust TIFF reader against real files in ../shared/data: 10x-style OME-TIFF H&E with a
//! SubIFD pyramid, real Xenium 16-bit DAPI, OpenSlide's own fixtures; and broken files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use cs_slide::{OpenSlideSource, SlideError, SlideSource, TiffSource, open_slide};
use cs_testdata::shared_file;

/// Mean absolute difference per RGB sample, and the share of samples differing by more than 16.
fn rgb_difference(a: &[u8], b: &[u8]) -> (f64, f64) {
    let mut sum = 0u64;
    let mut large = 0usize;
    let mut n = 0usize;
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for k in 0..3 {
            let d = (i32::from(pa[k]) - i32::from(pb[k])).unsigned_abs();
            sum += u64::from(d);
            large += usize::from(d > 16);
            n += 1;
        }
    }
    (sum as f64 / n as f64, large as f64 / n as f64)
}

#[test]
fn ome_tiff_he_opens_with_all_four_subifd_levels_and_the_svs_pixels() {
    let (Some(ome), Some(svs), Some(pyramid)) = (
        shared_file("wsi/CMU-1-Small-Region.ome.tif"),
        shared_file("wsi/CMU-1-Small-Region.svs"),
        shared_file("wsi/CMU-1-Small-Region.pyramid.tiff"),
    ) else {
        return;
    };
    let slide = open_slide(&ome).unwrap();
    let meta = slide.metadata();
    assert_eq!(meta.backend, "tiff");
    assert_eq!(meta.vendor, "ome-tiff");
    assert_eq!(meta.levels.len(), 4, "{:?}", meta.levels);
    assert_eq!(meta.level0_size_px(), (2220, 2967));
    let downsamples: Vec<f64> = meta.levels.iter().map(|l| l.downsample.round()).collect();
    assert_eq!(downsamples, [1.0, 2.0, 4.0, 8.0]);
    assert!((meta.mpp_x.unwrap() - 0.499).abs() < 1e-9 && (meta.mpp_y.unwrap() - 0.499).abs() < 1e-9);
    assert!(!meta.is_multichannel);
    let names: Vec<&str> = meta.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["R", "G", "B"]);
    assert!(meta.channels.iter().all(|c| c.bits_per_sample == 8));

    // Level 0 against OpenSlide's read of the SVS the pixels came from, within JPEG error: the
    // OME-TIFF's tiles were JPEG-encoded again, so it may differ from the SVS by as much as the
    // equally re-encoded pyramid TIFF does through OpenSlide (+10%), and from that TIFF's level 0
    // by decoder rounding only (README: mean absolute difference under 2 per sample).
    let reference = OpenSlideSource::open(&svs).unwrap();
    let reencoded = OpenSlideSource::open(&pyramid).unwrap();
    for (pos, size) in [((0u64, 0u64), 512u32), ((1000, 1400), 700), ((1900, 2700), 400)] {
        let ours = slide.read_region(pos, 0, size, size).unwrap();
        let svs_pixels = reference.read_region(pos, 0, size, size).unwrap();
        let openslide_reencoded = reencoded.read_region(pos, 0, size, size).unwrap();
        let (ours_vs_svs, _) = rgb_difference(&ours.pixels, &svs_pixels.pixels);
        let (openslide_vs_svs, _) = rgb_difference(&openslide_reencoded.pixels, &svs_pixels.pixels);
        assert!(
            ours_vs_svs <= openslide_vs_svs * 1.1 + 0.2,
            "at {pos:?}: ours {ours_vs_svs:.2} vs OpenSlide's re-encoded {openslide_vs_svs:.2}"
        );
        let (ours_vs_reencoded, share) = rgb_difference(&ours.pixels, &openslide_reencoded.pixels);
        assert!(
            ours_vs_reencoded < 2.0 && share < 0.01,
            "at {pos:?}: {ours_vs_reencoded:.2}, {share:.4}"
        );
        let inside_w = (2220 - pos.0).min(u64::from(size)) as u32;
        assert!(ours.pixel(inside_w - 1, 0)[3] == 255 && ours.pixels.chunks(4).all(|p| p[3] == 255 || p[3] == 0));
    }
    // Past the right edge the region is transparent, as OpenSlide's is.
    let edge = slide.read_region((2100, 0), 0, 256, 16).unwrap();
    assert_eq!(edge.pixel(119, 0)[3], 255);
    assert_eq!(edge.pixel(120, 0)[3], 0);

    // The coarsest level is a downscaled picture of level 0 (means agree).
    let coarse = slide.read_region((0, 0), 3, 277, 370).unwrap();
    let fine = slide.read_region((0, 0), 0, 2220, 2967).unwrap();
    let mean = |img: &cs_slide::RgbaImage| {
        img.pixels.chunks(4).map(|p| f64::from(p[1])).sum::<f64>() / (img.pixels.len() / 4) as f64
    };
    assert!(
        (mean(&coarse) - mean(&fine)).abs() < 2.0,
        "{} vs {}",
        mean(&coarse),
        mean(&fine)
    );
}

#[test]
fn real_xenium_dapi_is_one_16_bit_channel_with_tifffiles_values() {
    let Some(path) = shared_file("xenium/sfe_toy_v1/morphology_focus.ome.tif") else {
        return;
    };
    let image = open_slide(&path).unwrap();
    let meta = image.metadata();
    assert_eq!(meta.backend, "tiff");
    assert!(meta.is_multichannel);
    assert_eq!(meta.channels.len(), 1);
    assert_eq!(meta.channels[0].bits_per_sample, 16);
    assert_eq!(meta.level0_size_px(), (237, 237));
    let dapi = image.read_channel_region((0, 0), 0, 237, 237, 0).unwrap();
    // Reference values read with tifffile 2026.3.3 (sum, max, a few pixels, row-major [y, x]).
    let sum: u64 = dapi.pixels.iter().map(|&v| u64::from(v)).sum();
    assert_eq!(sum, 3_525_232);
    assert_eq!(dapi.pixels.iter().max(), Some(&255));
    let at = |x: usize, y: usize| dapi.pixels[y * 237 + x];
    assert_eq!((at(100, 100), at(236, 0), at(0, 236)), (198, 37, 33));
    // Drawn as RGBA, the stain is visible (window from its own histogram, not 0..65535).
    let rgba = image.read_region((0, 0), 0, 237, 237).unwrap();
    let brightest = rgba.pixels.chunks(4).map(|p| p[0].max(p[1]).max(p[2])).max().unwrap();
    assert!(brightest > 200, "brightest {brightest}");
}

#[test]
fn a_renamed_single_file_ome_tiff_still_opens() {
    let Some(path) = shared_file("xenium/sfe_toy_v1/morphology_focus.ome.tif") else {
        return;
    };
    let dir = temp_dir("renamed");
    let renamed = dir.join("sample_dapi.ome.tif");
    std::fs::copy(&path, &renamed).unwrap();
    // Its OME-XML names morphology_focus.ome.tif, which is not beside it.
    let image = open_slide(&renamed).unwrap();
    assert_eq!(image.metadata().channels.len(), 1);
    assert_eq!(image.metadata().level0_size_px(), (237, 237));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn boxes_tiff_through_the_tiff_reader_equals_boxes_png() {
    let (Some(tiff), Some(png)) = (
        shared_file("wsi/openslide-fixtures/boxes.tiff"),
        shared_file("wsi/openslide-fixtures/boxes.png"),
    ) else {
        return;
    };
    let slide = TiffSource::open(&tiff).unwrap();
    assert_eq!(slide.metadata().levels.len(), 4);
    let expected = image::open(&png).unwrap().to_rgba8();
    let (w, h) = expected.dimensions();
    let got = slide.read_region((0, 0), 0, w, h).unwrap();
    assert_eq!(got.pixels, expected.as_raw().as_slice());
    // A plain generic TIFF still goes to OpenSlide.
    assert_eq!(open_slide(&tiff).unwrap().metadata().backend, "openslide");
}

#[test]
fn an_unknown_compression_is_named_and_refused() {
    let Some(path) = shared_file("wsi/openslide-fixtures/unopenable.tiff") else {
        return;
    };
    let message = TiffSource::open(&path).unwrap_err().to_string();
    assert!(
        message.contains("unopenable.tiff") && message.contains("compression 52479"),
        "{message}"
    );
    assert!(open_slide(&path).is_err());
}

#[test]
fn dicom_wsi_opens_without_openslide_4_with_its_series_and_pixels() {
    let (Some(dcm), Some(svs)) = (
        shared_file("wsi/openslide-fixtures/boxes_0.dcm"),
        shared_file("wsi/openslide-fixtures/small.svs"),
    ) else {
        return;
    };
    let slide = open_slide(&dcm).unwrap();
    let meta = slide.metadata();
    assert_eq!(meta.backend, "dicom");
    assert_eq!(meta.level0_size_px(), (16, 16));
    assert!((meta.mpp_x.unwrap() - 0.499).abs() < 1e-9 && (meta.mpp_y.unwrap() - 0.499).abs() < 1e-9);
    // boxes_1.dcm, the same series' THUMBNAIL instance, is found beside it.
    assert_eq!(meta.associated_images, ["thumbnail"]);
    let thumbnail = slide.read_associated_image("thumbnail").unwrap();
    assert_eq!((thumbnail.width, thumbnail.height), (16, 16));
    // The pixels are small.svs's (the same 16x16 crop of CMU-1) within JPEG error.
    let ours = slide.read_region((0, 0), 0, 16, 16).unwrap();
    let reference = OpenSlideSource::open(&svs)
        .unwrap()
        .read_region((0, 0), 0, 16, 16)
        .unwrap();
    let (mean, _) = rgb_difference(&ours.pixels, &reference.pixels);
    assert!(mean < 6.0, "mean difference {mean}");
    assert!(ours.pixels.chunks(4).all(|p| p[3] == 255));
    // Past the edge: transparent, as OpenSlide gives it.
    assert_eq!(slide.read_region((8, 8), 0, 16, 16).unwrap().pixel(12, 12)[3], 0);
}

#[test]
fn a_broken_dicom_is_named() {
    let dir = temp_dir("dicom");
    let path = dir.join("broken.dcm");
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICMnot really");
    std::fs::write(&path, bytes).unwrap();
    let message = open_slide(&path).err().unwrap().to_string();
    assert!(message.contains("broken.dcm") && message.contains("DICOM"), "{message}");
    std::fs::remove_dir_all(&dir).ok();
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cs_slide_tiff_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_truncated_file_fails_per_tile_with_its_name() {
    let Some(path) = shared_file("wsi/CMU-1-Small-Region.ome.tif") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let dir = temp_dir("truncated");
    let cut = dir.join("cut.ome.tif");
    // tifffile writes the IFDs first: cutting the tail keeps the structure and loses tiles.
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    match open_slide(&cut) {
        Ok(slide) => {
            let last = slide.read_region((2000, 2800), 0, 200, 160);
            let error = last.unwrap_err();
            assert!(matches!(error, SlideError::ReadFailed { .. }), "{error:?}");
            assert!(error.to_string().contains("cut.ome.tif"), "{error}");
            // The rest of the image still reads.
            assert!(slide.read_region((0, 0), 0, 256, 256).is_ok());
        }
        Err(error) => assert!(error.to_string().contains("cut.ome.tif"), "{error}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A small grey TIFF with an ImageDescription, written with the `tiff` crate's encoder.
fn write_grey_tiff(path: &std::path::Path, description: &str, width: u32, height: u32) {
    use tiff::encoder::{TiffEncoder, colortype};
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = TiffEncoder::new(file).unwrap();
    let mut image = encoder.new_image::<colortype::Gray16>(width, height).unwrap();
    image
        .encoder()
        .write_tag(tiff::tags::Tag::ImageDescription, description)
        .unwrap();
    let data: Vec<u16> = (0..width * height).map(|i| (i % 4096) as u16).collect();
    image.write_data(&data).unwrap();
}

#[test]
fn ome_xml_that_disagrees_with_the_pages_is_refused_with_the_reason() {
    let dir = temp_dir("ome");
    let wrong_size = dir.join("wrong_size.ome.tif");
    write_grey_tiff(
        &wrong_size,
        r#"<?xml version="1.0"?><OME><Image ID="Image:0"><Pixels SizeX="64" SizeY="64" SizeC="1" Type="uint16" DimensionOrder="XYCZT"><Channel Name="DAPI"/></Pixels></Image></OME>"#,
        32,
        16,
    );
    let message = open_slide(&wrong_size).err().unwrap().to_string();
    assert!(
        message.contains("wrong_size.ome.tif") && message.contains("64x64") && message.contains("32x16"),
        "{message}"
    );

    let missing_ifd = dir.join("missing_ifd.ome.tif");
    write_grey_tiff(
        &missing_ifd,
        r#"<?xml version="1.0"?><OME><Image ID="Image:0"><Pixels SizeX="32" SizeY="16" SizeC="2" Type="uint16" DimensionOrder="XYCZT"><Channel Name="DAPI"/><Channel Name="18S"/></Pixels></Image></OME>"#,
        32,
        16,
    );
    let message = open_slide(&missing_ifd).err().unwrap().to_string();
    assert!(
        message.contains("missing_ifd.ome.tif") && message.contains("IFD 1"),
        "{message}"
    );

    let good = dir.join("good.ome.tif");
    write_grey_tiff(
        &good,
        r#"<?xml version="1.0"?><OME><Image ID="Image:0"><Pixels SizeX="32" SizeY="16" SizeC="1" Type="uint16" DimensionOrder="XYCZT" PhysicalSizeX="0.2125" PhysicalSizeY="0.2125"><Channel Name="DAPI" SamplesPerPixel="1"/></Pixels></Image></OME>"#,
        32,
        16,
    );
    let image = open_slide(&good).unwrap();
    assert_eq!(image.metadata().channels[0].name, "DAPI");
    assert_eq!(image.metadata().mpp_x, Some(0.2125));
    let values = image.read_channel_region((0, 0), 0, 32, 16, 0).unwrap();
    assert_eq!(values.pixels[33], 33);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unsupported_sample_formats_are_named() {
    use tiff::encoder::{TiffEncoder, colortype};
    let dir = temp_dir("float");
    let path = dir.join("float.tif");
    let file = std::fs::File::create(&path).unwrap();
    let mut encoder = TiffEncoder::new(file).unwrap();
    encoder
        .write_image::<colortype::Gray32Float>(8, 8, &[0.5f32; 64])
        .unwrap();
    let message = match open_slide(&path) {
        Ok(image) => image.read_channel_region((0, 0), 0, 8, 8, 0).unwrap_err().to_string(),
        Err(error) => error.to_string(),
    };
    assert!(message.contains("float.tif") && message.contains("bit"), "{message}");
    std::fs::remove_dir_all(&dir).ok();
}
