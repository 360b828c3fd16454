//! Where a Xenium bundle keeps its morphology images, in each layout 10x has shipped:
//! - XOA 1.x: `morphology_focus.ome.tif` (DAPI, focused), `morphology_mip.ome.tif` (maximum
//!   projection) and `morphology.ome.tif` (the z-stack);
//! - XOA 2.x–3.x: `morphology_focus/morphology_focus_000N.ome.tif`, one file per stain (DAPI,
//!   boundary, interior RNA, interior protein with the multimodal segmentation kit);
//! - XOA 4.x: `morphology_focus/chNNNN_<name>.ome.tif`, one file per stain or protein.
//!
//! Only paths and names here: the pixels are read by `cs_slide`.

use std::path::{Path, PathBuf};

/// The 10x names of the four morphology stains of the multimodal segmentation kit, in file order
/// (`morphology_focus_0000` .. `_0003`), for files whose OME-XML names none.
pub const XENIUM_STAIN_NAMES: [&str; 4] = ["DAPI", "ATP1A1/CD45/E-Cadherin", "18S", "AlphaSMA/Vimentin"];

/// One morphology image file of a bundle and the channel name its file name implies.
#[derive(Debug, Clone, PartialEq)]
pub struct MorphologyFile {
    pub path: PathBuf,
    /// `DAPI` for `ch0000_dapi.ome.tif` or `morphology_focus_0000.ome.tif`; None when the name
    /// says nothing (XOA 1.x files hold DAPI, but their OME-XML is the better source).
    pub channel_name_hint: Option<String>,
    /// Where the image lies: world µm from its level-0 pixels, when its container says so (a
    /// SpatialData element's transformation); None: placed by the bundle's pixel size.
    pub world_from_image_px: Option<crate::Affine2>,
}

/// The morphology images to show, in channel order: the `morphology_focus/` folder's files when
/// there is one, else `morphology_focus.ome.tif`, else `morphology_mip.ome.tif`, else
/// `morphology.ome.tif`. Empty when the bundle has none.
pub fn find_morphology_images(dir: &Path) -> Vec<MorphologyFile> {
    let folder = dir.join("morphology_focus");
    if folder.is_dir()
        && let Ok(entries) = std::fs::read_dir(&folder)
    {
        let mut files: Vec<(u32, MorphologyFile)> = entries
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                let name = path.file_name()?.to_str()?.to_owned();
                let (index, hint) = parse_focus_file_name(&name)?;
                Some((
                    index,
                    MorphologyFile {
                        path,
                        channel_name_hint: hint,
                        world_from_image_px: None,
                    },
                ))
            })
            .collect();
        files.sort_by_key(|(index, _)| *index);
        if !files.is_empty() {
            return files.into_iter().map(|(_, f)| f).collect();
        }
    }
    [
        "morphology_focus.ome.tif",
        "morphology_mip.ome.tif",
        "morphology.ome.tif",
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|path| path.is_file())
    .map(|path| {
        vec![MorphologyFile {
            path,
            channel_name_hint: None,
            world_from_image_px: None,
        }]
    })
    .unwrap_or_default()
}

/// `morphology_focus_0002.ome.tif` -> (2, "18S"); `ch0001_atp1a1_cd45_e-cadherin.ome.tif` ->
/// (1, "atp1a1_cd45_e-cadherin"); anything else -> None.
fn parse_focus_file_name(name: &str) -> Option<(u32, Option<String>)> {
    let stem = name
        .strip_suffix(".ome.tif")
        .or_else(|| name.strip_suffix(".ome.tiff"))?;
    if let Some(number) = stem.strip_prefix("morphology_focus_") {
        let index: u32 = number.parse().ok()?;
        let hint = XENIUM_STAIN_NAMES.get(index as usize).map(|s| (*s).to_owned());
        return Some((index, hint));
    }
    let rest = stem.strip_prefix("ch")?;
    let (number, label) = rest.split_once('_').unwrap_or((rest, ""));
    let index: u32 = number.parse().ok()?;
    let hint = if label.eq_ignore_ascii_case("dapi") {
        Some("DAPI".to_owned())
    } else {
        (!label.is_empty()).then(|| label.to_owned())
    };
    Some((index, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_is_found_in_channel_order() {
        let root = std::env::temp_dir().join(format!("cs_xenium_morph_{}", std::process::id()));
        let v1 = root.join("v1");
        std::fs::create_dir_all(&v1).unwrap();
        assert!(find_morphology_images(&v1).is_empty());
        std::fs::write(v1.join("morphology_mip.ome.tif"), b"").unwrap();
        std::fs::write(v1.join("morphology_focus.ome.tif"), b"").unwrap();
        let found = find_morphology_images(&v1);
        assert_eq!(found.len(), 1);
        assert!(found[0].path.ends_with("morphology_focus.ome.tif"));

        let v2 = root.join("v2/morphology_focus");
        std::fs::create_dir_all(&v2).unwrap();
        for i in [3, 0, 2, 1] {
            std::fs::write(v2.join(format!("morphology_focus_000{i}.ome.tif")), b"").unwrap();
        }
        std::fs::write(v2.join("notes.txt"), b"").unwrap();
        let found = find_morphology_images(&root.join("v2"));
        let hints: Vec<_> = found.iter().map(|f| f.channel_name_hint.clone().unwrap()).collect();
        assert_eq!(hints, XENIUM_STAIN_NAMES);

        let v4 = root.join("v4/morphology_focus");
        std::fs::create_dir_all(&v4).unwrap();
        std::fs::write(v4.join("ch0001_atp1a1_cd45_e-cadherin.ome.tif"), b"").unwrap();
        std::fs::write(v4.join("ch0000_dapi.ome.tif"), b"").unwrap();
        std::fs::write(v4.join("ch0012_cd8a.ome.tif"), b"").unwrap();
        let found = find_morphology_images(&root.join("v4"));
        let hints: Vec<_> = found.iter().map(|f| f.channel_name_hint.clone().unwrap()).collect();
        assert_eq!(hints, ["DAPI", "atp1a1_cd45_e-cadherin", "cd8a"]);
        std::fs::remove_dir_all(&root).ok();
    }
}
