//! `--xoa 1|2|3|4`: each synthetic layout re-reads through `cs_xenium` the way a real run of that
//! release does (ids, label_id and multinucleate cells, transcript categories, version, Explorer
//! cell groups).

use std::path::{Path, PathBuf};

use cs_synth::{SynthOptions, XoaVersion, generate};
use cs_xenium::{FeatureCategory, NO_CELL, XeniumBundle};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bundle(xoa: XoaVersion) -> Result<(PathBuf, XeniumBundle), Box<dyn std::error::Error>> {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cs_synth_xoa{}_{}", xoa.number(), std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = SynthOptions {
        cells: 600,
        seed: 7,
        write_slide: false,
        write_transcripts: true,
        xoa: Some(xoa),
        ..Default::default()
    };
    let summary = generate(&options, &dir, &|_, _| {}, &|| false)?;
    let bundle = XeniumBundle::open(&summary.bundle_dir)?;
    Ok((summary.bundle_dir, bundle))
}

fn column_type(path: &Path, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let file = std::fs::File::open(path)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = reader.schema();
    Ok(schema
        .field_with_name(name)
        .map_or_else(|_| "absent".to_owned(), |f| f.data_type().to_string()))
}

/// An array of the bundle's `cells.zarr.zip`: its shape and values.
fn cells_zarr_array<T: zarrs::array::ElementOwned>(
    dir: &Path,
    node: &str,
) -> Result<(Vec<u64>, Vec<T>), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    let folder = zarrs::filesystem::FilesystemStore::new(dir)?;
    let key = zarrs::storage::StoreKey::new("cells.zarr.zip")?;
    let store = Arc::new(zarrs_zip::ZipStorageAdapter::new(Arc::new(folder), key)?);
    let array = zarrs::array::Array::open(store, node)?;
    let shape = array.shape().to_vec();
    let all: Vec<std::ops::Range<u64>> = shape.iter().map(|&n| 0..n).collect();
    Ok((shape, array.retrieve_array_subset::<Vec<T>>(&all)?))
}

#[test]
fn xoa1_integer_ids_no_label_id_binary_feature_names() -> TestResult {
    let (dir, bundle) = bundle(XoaVersion::V1)?;
    assert_eq!(
        bundle.experiment.as_ref().and_then(|e| e.xoa_version()),
        Some([1, 0, 2])
    );
    assert_eq!(bundle.cells.ids[0], "1");
    assert_eq!(column_type(&dir.join("cells.parquet"), "cell_id")?, "Int64");
    assert_eq!(column_type(&dir.join("cells.parquet"), "nucleus_count")?, "absent");
    assert_eq!(
        column_type(&dir.join("nucleus_boundaries.parquet"), "label_id")?,
        "absent"
    );
    assert_eq!(column_type(&dir.join("transcripts.parquet"), "feature_name")?, "Binary");
    let nuclei = bundle.nucleus_boundaries.as_ref().ok_or("no nuclei")?;
    assert!((0..bundle.cells.len()).all(|c| nuclei.part_count(c) == 1));
    // cells.zarr.zip as XOA 1.0 wrote it: 1-D integer ids, and both polygon sets in one dense
    // array (nuclei, then cells) with a vertex count per cell: the same shapes as the parquets.
    let n = bundle.cells.len();
    let (id_shape, ids) = cells_zarr_array::<u32>(&dir, "/cell_id")?;
    assert_eq!((id_shape, ids[0]), (vec![n as u64], 1));
    let (count_shape, counts) = cells_zarr_array::<i32>(&dir, "/polygon_num_vertices")?;
    assert_eq!(count_shape, vec![2, n as u64]);
    let (vertex_shape, vertices) = cells_zarr_array::<f32>(&dir, "/polygon_vertices")?;
    assert_eq!(vertex_shape[..2], [2, n as u64]);
    let row = vertex_shape[2] as usize;
    let cell_polygons = bundle.cell_boundaries.as_ref().ok_or("no cell boundaries")?;
    for (set, polygons) in [nuclei, cell_polygons].into_iter().enumerate() {
        for cell in 0..n {
            let count = counts[set * n + cell] as usize;
            assert!(
                count >= 3 && 2 * count <= row,
                "set {set} cell {cell}: {count} vertices"
            );
            let start = (set * n + cell) * row;
            let ring: Vec<[f32; 2]> = vertices[start..start + 2 * count]
                .chunks_exact(2)
                .map(|v| [v[0], v[1]])
                .collect();
            let area = cs_xenium::ring_area_um2(&ring);
            let expected = polygons.area_um2(cell);
            assert!(
                (area - expected).abs() <= 1e-3 * expected,
                "set {set} cell {cell}: {area} vs {expected}"
            );
        }
    }
    let transcripts = bundle.load_transcripts(0.0)?.ok_or("no transcripts")?;
    // -1: in no cell.
    assert!(transcripts.cell.contains(&NO_CELL));
    assert!(transcripts.cell.iter().any(|&c| c != NO_CELL));
    // Controls by name alone.
    let controls = transcripts.gene_category.iter().filter(|c| c.is_control()).count();
    assert!(controls > 0 && controls < transcripts.genes.len());
    Ok(())
}

#[test]
fn xoa2_label_ids_give_multinucleate_and_anucleate_cells() -> TestResult {
    let (dir, bundle) = bundle(XoaVersion::V2)?;
    assert_eq!(
        bundle.experiment.as_ref().and_then(|e| e.xoa_version()),
        Some([2, 0, 0])
    );
    assert!(bundle.cells.ids[0].ends_with("-1"));
    let nuclei = bundle.nucleus_boundaries.as_ref().ok_or("no nuclei")?;
    let nucleus_count = bundle.cells.numeric_column("nucleus_count").ok_or("no nucleus_count")?;
    let (mut two, mut none) = (0, 0);
    for (cell, &count) in nucleus_count.iter().enumerate() {
        // The boundary file and cells.parquet agree on every cell's nuclei.
        assert_eq!(nuclei.part_count(cell), count as usize, "cell {cell}");
        match count as usize {
            0 => none += 1,
            2 => two += 1,
            _ => {}
        }
    }
    assert!(two > 0 && none > 0, "{two} binucleate, {none} anucleate of 600");
    // cells.zarr.zip's polygon sets: each nucleus names its cell, as many as nucleus_count says;
    // one cell polygon per cell, in order.
    let (_, owners) = cells_zarr_array::<u32>(&dir, "/polygon_sets/0/cell_index")?;
    let mut per_cell = vec![0usize; nucleus_count.len()];
    for &owner in &owners {
        per_cell[owner as usize] += 1;
    }
    assert!(per_cell.iter().zip(nucleus_count).all(|(&a, &b)| a == b as usize));
    let (_, cell_owners) = cells_zarr_array::<u32>(&dir, "/polygon_sets/1/cell_index")?;
    assert!(cell_owners.iter().enumerate().all(|(i, &c)| c as usize == i));
    // Two nuclei are two polygons, each about half the cell's one nucleus, apart.
    let cell = (0..bundle.cells.len())
        .find(|&c| nuclei.part_count(c) == 2)
        .ok_or("no binucleate cell")?;
    let parts: Vec<&[[f32; 2]]> = nuclei.parts(cell).collect();
    assert!(parts.iter().all(|p| p.len() >= 3));
    let nucleus_area = bundle.cells.numeric_column("nucleus_area").ok_or("no nucleus_area")?;
    assert!((nuclei.area_um2(cell) - nucleus_area[cell]).abs() < 0.01 * nucleus_area[cell]);
    let anucleate = nucleus_count
        .iter()
        .position(|&n| n == 0.0)
        .ok_or("no anucleate cell")?;
    assert!(nucleus_area[anucleate].is_nan());
    assert!(nuclei.polygon(anucleate).is_empty());
    let methods = bundle
        .cells
        .categorical_column("segmentation_method")
        .ok_or("no segmentation_method")?;
    assert_eq!(methods.categories.len(), 1);
    assert_eq!(
        column_type(&dir.join("transcripts.parquet"), "codeword_index")?,
        "Int32"
    );
    assert_eq!(
        column_type(&dir.join("transcripts.parquet"), "codeword_category")?,
        "absent"
    );
    // Explorer's cell groups: the graph clustering, cell for cell.
    let groups = cs_xenium::explorer::read_analysis_zarr_zip(&dir.join("analysis.zarr.zip"), &bundle.cells)?;
    let clusters = bundle
        .cells
        .categorical_column("gene_expression_graphclust")
        .ok_or("no clusters")?;
    assert_eq!(groups.len(), 1);
    for (cell, (&a, &b)) in groups[0].1.codes.iter().zip(&clusters.codes).enumerate() {
        let name_a = &groups[0].1.categories[a as usize];
        let name_b = &clusters.categories[b as usize];
        assert_eq!(name_a, &format!("Cluster {name_b}"), "cell {cell}");
    }
    Ok(())
}

#[test]
fn xoa3_and_4_say_what_each_codeword_is_and_4_has_proteins() -> TestResult {
    for xoa in [XoaVersion::V3, XoaVersion::V4] {
        let (dir, bundle) = bundle(xoa)?;
        let version = bundle
            .experiment
            .as_ref()
            .and_then(|e| e.xoa_version())
            .ok_or("no version")?;
        assert_eq!(version[0], xoa.number());
        assert_eq!(column_type(&dir.join("transcripts.parquet"), "is_gene")?, "Boolean");
        assert!(bundle.cells.numeric_column("genomic_control_counts").is_some());
        let transcripts = bundle.load_transcripts(20.0)?.ok_or("no transcripts")?;
        let by_category = transcripts.counts_by_category();
        let count = |c: FeatureCategory| by_category.iter().find(|(k, _)| *k == c).map_or(0, |(_, n)| *n);
        assert!(count(FeatureCategory::Gene) > 10 * count(FeatureCategory::NegativeControlProbe));
        assert!(count(FeatureCategory::NegativeControlProbe) > 0);
        assert!(count(FeatureCategory::NegativeControlCodeword) > 0);
        // The other codewords at a real run's rates: unassigned 1.5%, genomic controls 0.2% of
        // all rows (before the qv filter; they decode at lower quality, so fewer pass it).
        let summary_all =
            cs_xenium::TranscriptSummary::read(&dir.join("transcripts.parquet"), &Default::default(), 0.0)?;
        let all = |c: FeatureCategory| {
            summary_all
                .by_category
                .iter()
                .find(|(k, _)| *k == c)
                .map_or(0, |(_, n)| *n)
        };
        let share = |c: FeatureCategory| all(c) as f64 / summary_all.total as f64;
        let unassigned = share(FeatureCategory::UnassignedCodeword);
        assert!(
            (0.012..0.018).contains(&unassigned),
            "unassigned codewords: {unassigned}"
        );
        let genomic = share(FeatureCategory::GenomicControl);
        assert!((0.001..0.003).contains(&genomic), "genomic controls: {genomic}");
        assert!(count(FeatureCategory::UnassignedCodeword) < all(FeatureCategory::UnassignedCodeword) as usize);
        let summary = cs_xenium::TranscriptSummary::read(&dir.join("transcripts.parquet"), &Default::default(), 20.0)?;
        assert_eq!(
            summary.total,
            transcripts.len() as u64 + transcripts.dropped_low_qv as u64
        );
        assert_eq!(summary.below_min_qv, transcripts.dropped_low_qv as u64);
        // The count matrix lists those codewords too, apart from the genes (in no cell: zero).
        let counts = bundle.counts.as_ref().ok_or("no count matrix")?;
        for (feature_type, codewords) in [
            ("Unassigned Codeword", 24),
            ("Deprecated Codeword", 3),
            ("Genomic Control", 12),
        ] {
            let features = counts.features_of_type(feature_type);
            assert_eq!(features.len(), codewords, "{feature_type}");
            assert!(counts.totals(feature_type).iter().all(|&t| t == 0.0));
        }
        let genes = counts.totals(cs_xenium::GENE_EXPRESSION);
        let transcript_counts = bundle
            .cells
            .numeric_column("transcript_counts")
            .ok_or("no transcript_counts")?;
        assert_eq!(genes, transcript_counts);
        // XOA 4: the protein rows, read from cell_feature_matrix.h5 and divided by its
        // protein_scaling_factor: one-decimal intensities that follow each cell's type.
        let proteins = counts.features_of_type(cs_xenium::PROTEIN_EXPRESSION);
        if xoa == XoaVersion::V3 {
            assert!(proteins.is_empty() && !dir.join("cell_feature_matrix.h5").exists());
            continue;
        }
        assert_eq!(proteins.len(), 15);
        let types = bundle
            .cells
            .categorical_column("synthetic_cell_type")
            .ok_or("no types")?;
        let mean_of = |protein: &str, cell_type: &str| -> Result<f64, Box<dyn std::error::Error>> {
            let feature = counts.feature_by_name(protein).ok_or("no such protein")?;
            let (mut sum, mut n) = (0.0, 0usize);
            for cell in 0..bundle.cells.len() {
                if types.categories[types.codes[cell] as usize] != cell_type {
                    continue;
                }
                let (features, values) = counts.cell(cell);
                let value = features
                    .iter()
                    .position(|&f| f == feature)
                    .map_or(0.0, |k| f64::from(values[k]));
                assert!(
                    ((value * 10.0).round() - value * 10.0).abs() < 1e-3,
                    "{protein}: {value}"
                );
                sum += value;
                n += 1;
            }
            Ok(sum / n.max(1) as f64)
        };
        assert!(mean_of("PanCK", "Epithelial")? > 5.0 * mean_of("PanCK", "T cells")?);
        assert!(mean_of("CD45", "T cells")? > 5.0 * mean_of("CD45", "Epithelial")?);
        let fractional = (0..bundle.cells.len())
            .flat_map(|c| counts.cell(c).1.to_vec())
            .any(|v| v.fract() != 0.0);
        assert!(fractional, "protein intensities are divided by the scaling factor");
    }
    Ok(())
}
