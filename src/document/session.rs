//! The document in and out of a session file: [`DocumentState::capture`] writes what is open and
//! made as a [`SessionFile`] (paths relative to the session's folder), and the `restore_*`
//! functions put a session's styles back on layers that have arrived. Opening the files, and
//! waiting for them, is the shell's.

use std::path::{Path, PathBuf};

use egui::Color32;

use cs_analysis::{Combine, Shape, Step};

use crate::document::DocumentState;
use crate::document::selections::Selections;
use crate::io::session_file::{
    SessionFile, StoredAlignment, StoredCellLayer, StoredCellStyle, StoredChannel, StoredClass, StoredClassColumn,
    StoredColourBy, StoredCombine, StoredGene, StoredModelRun, StoredMorphologyLayer, StoredPath, StoredSelection,
    StoredSelections, StoredShape, StoredSlideLayer, StoredStep, StoredTranscripts, StoredView,
};
use crate::layers::camera::Camera;
use crate::layers::cell_layer::ColourBy;
use crate::layers::palettes::ColourMap;
use crate::work::model_runs::RunKey;

/// A restored gene colouring: its colour map and range wait for the gene's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingGeneStyle {
    pub feature: u32,
    pub colour_map: Option<ColourMap>,
    pub range: Option<[f64; 2]>,
}

/// What restoring a cell layer's styles left for the caller.
#[derive(Debug, Default)]
pub struct CellLayerRestore {
    /// What the session coloured by that this bundle does not have ("gene X", "column Y").
    pub missing: Option<String>,
    /// The gene to colour by (its counts are read off the UI thread) and its style.
    pub gene: Option<PendingGeneStyle>,
    /// The transcripts were shown, with this look.
    pub wants_transcripts: Option<StoredTranscripts>,
}

impl DocumentState {
    /// A session's selections, their cells found among the open ones (none open: the shapes are
    /// kept and find their cells when a bundle opens); the undo history starts afresh.
    pub fn restore_selections(&mut self, stored: &StoredSelections) {
        let items = stored
            .items
            .iter()
            .map(|s| {
                let steps = s.steps.iter().map(step_from_stored).collect();
                (s.name.clone(), from_colour(s.colour), s.visible, steps)
            })
            .collect();
        let empty;
        let (index, n) = match &self.cells {
            Some(cells) => (&cells.index, cells.len()),
            None => {
                empty = cs_analysis::GridIndex::build(&[], &[]);
                (&empty, 0)
            }
        };
        self.selections
            .replace_all(items, stored.active, stored.compare, index, n);
    }

    /// Everything a session file holds, with paths relative to `base_dir` (the session's folder)
    /// and the view `camera` shows.
    pub fn capture(&self, base_dir: Option<&Path>, camera: &Camera) -> SessionFile {
        let mut session = SessionFile {
            slide: self.slide.as_ref().map(|s| StoredPath::new(&s.path, base_dir)),
            bundle: self.cells.as_ref().map(|c| StoredPath::new(&c.dir, base_dir)),
            compare_slide: self
                .compare
                .as_ref()
                .filter(|c| c.sample.is_none())
                .and_then(|c| c.slide.as_ref())
                .map(|c| StoredPath::new(&c.path, base_dir)),
            alignment: self.alignment.as_ref().map(|a| StoredAlignment {
                file: a.path.as_deref().map(|p| StoredPath::new(p, base_dir)),
                xenium_px_from_slide_px: a.xenium_px_from_slide_px.rows,
                rms_residual_um: a.rms_residual_um,
            }),
            view: (self.slide.is_some() || self.cells.is_some()).then(|| StoredView {
                center_in_world_um: camera.center_in_world.to_array(),
                points_per_um: camera.points_per_um,
            }),
            slide_layer: self.slide.as_ref().map(|s| StoredSlideLayer {
                visible: s.layer.visible,
                opacity: s.layer.opacity,
            }),
            morphology_layer: self.morphology.as_ref().map(|m| StoredMorphologyLayer {
                visible: m.visible,
                opacity: m.opacity,
                channels: m
                    .channels
                    .iter()
                    .map(|c| StoredChannel {
                        name: c.name.clone(),
                        style: c.style,
                    })
                    .collect(),
            }),
            cell_layer: self.cells.as_ref().map(|cells| {
                let colour_by = match &cells.colour_by {
                    ColourBy::Uniform => StoredColourBy::Uniform,
                    ColourBy::Category(name) => StoredColourBy::Category(name.clone()),
                    ColourBy::Numeric(name) => StoredColourBy::Numeric(name.clone()),
                    ColourBy::Gene(feature) => StoredColourBy::Gene(cells.feature_name(*feature)),
                };
                let style = &cells.style;
                let numeric_style = cells
                    .numeric
                    .as_ref()
                    .filter(|_| matches!(cells.colour_by, ColourBy::Numeric(_) | ColourBy::Gene(_)));
                StoredCellLayer {
                    show_cells: cells.show_cells,
                    show_nuclei: cells.show_nuclei,
                    colour_by,
                    uniform_colour: colour(cells.uniform_colour),
                    class_styles: cells
                        .classes
                        .iter()
                        .map(|(column, classes)| StoredClassColumn {
                            column: column.clone(),
                            classes: classes
                                .iter()
                                .map(|c| StoredClass {
                                    name: c.name.clone(),
                                    colour: colour(c.colour),
                                    visible: c.visible,
                                })
                                .collect(),
                        })
                        .collect(),
                    // Only while colouring by numbers (the style outlives a switch to classes).
                    numeric_colour_map: numeric_style.map(|n| n.colour_map.name().to_owned()),
                    numeric_range: numeric_style.map(|n| [n.min, n.max]),
                    cell_style: StoredCellStyle {
                        opacity: style.opacity,
                        cell_fill_alpha: style.cell_fill_alpha,
                        cell_line_alpha: style.cell_line_alpha,
                        cell_line_px: style.cell_line_px,
                        nucleus_fill_alpha: style.nucleus_fill_alpha,
                        nucleus_line_alpha: style.nucleus_line_alpha,
                        nucleus_line_px: style.nucleus_line_px,
                    },
                    transcripts: cells.transcripts.as_ref().map(|t| StoredTranscripts {
                        visible: t.visible,
                        opacity: t.opacity,
                        radius_px: t.radius_px,
                        min_qv: t.min_qv,
                        genes: t
                            .index
                            .genes
                            .iter()
                            .zip(t.gene_colours.iter().zip(&t.gene_visible))
                            .map(|(name, (colour, visible))| StoredGene {
                                name: name.clone(),
                                colour: self::colour(*colour),
                                visible: *visible,
                            })
                            .collect(),
                    }),
                    group_files: cells.group_files.iter().map(|p| StoredPath::new(p, base_dir)).collect(),
                }
            }),
            selections: stored_selections(&self.selections),
            annotations: self.annotations.items.clone(),
            annotation_classes: self.annotations.classes_to_store(),
            bookmarks: self.bookmarks.items.clone(),
            cohort: self.cohort.as_ref().map(|cohort| {
                let compared = self.compare.as_ref().and_then(|c| c.sample.as_deref());
                cohort.stored(base_dir, compared)
            }),
            ..Default::default()
        };
        if let Some(key) = &self.models.classifier_key {
            session.model_runs.push(stored_run("classifier", key));
        }
        if let Some(key) = &self.models.niches_key {
            session.model_runs.push(stored_run("niches", key));
        }
        session
    }

    /// Puts a session's cell-layer styles on the open cells (after the model columns exist).
    /// What cannot be done here (a gene's counts, the transcripts) is returned for the caller.
    pub fn restore_cell_layer(&mut self, layers: &StoredCellLayer) -> CellLayerRestore {
        let mut restore = CellLayerRestore {
            wants_transcripts: layers.transcripts.clone(),
            ..Default::default()
        };
        let Some(cells) = &mut self.cells else {
            return restore;
        };
        cells.show_cells = layers.show_cells;
        cells.show_nuclei = layers.show_nuclei;
        cells.uniform_colour = from_colour(layers.uniform_colour);
        let s = &layers.cell_style;
        cells.style = cs_render::CellLayerStyle {
            opacity: s.opacity,
            cell_fill_alpha: s.cell_fill_alpha,
            cell_line_alpha: s.cell_line_alpha,
            cell_line_px: s.cell_line_px,
            nucleus_fill_alpha: s.nucleus_fill_alpha,
            nucleus_line_alpha: s.nucleus_line_alpha,
            nucleus_line_px: s.nucleus_line_px,
        };
        for stored in &layers.class_styles {
            let Some((_, classes)) = cells.classes.iter_mut().find(|(c, _)| *c == stored.column) else {
                continue;
            };
            for class in classes.iter_mut() {
                if let Some(saved) = stored.classes.iter().find(|c| c.name == class.name) {
                    class.colour = from_colour(saved.colour);
                    class.visible = saved.visible;
                }
            }
        }
        let colour_map = layers
            .numeric_colour_map
            .as_deref()
            .and_then(|name| ColourMap::ALL.into_iter().find(|m| m.name() == name));
        match &layers.colour_by {
            StoredColourBy::Uniform => cells.set_colour_by(ColourBy::Uniform),
            StoredColourBy::Category(name) if cells.bundle.cells.categorical_column(name).is_some() => {
                cells.set_colour_by(ColourBy::Category(name.clone()));
            }
            StoredColourBy::Numeric(name) if cells.bundle.cells.numeric_column(name).is_some() => {
                cells.set_colour_by(ColourBy::Numeric(name.clone()));
                if let Some(numeric) = &mut cells.numeric {
                    if let Some(map) = colour_map {
                        numeric.colour_map = map;
                    }
                    if let Some([min, max]) = layers.numeric_range.filter(|[a, b]| a.is_finite() && b > a) {
                        (numeric.min, numeric.max) = (min, max);
                    }
                }
                cells.numeric_changed();
            }
            StoredColourBy::Gene(name) => {
                let feature = cells
                    .bundle
                    .counts
                    .as_ref()
                    .and_then(|c| c.features.iter().position(|f| f.name == *name));
                match feature {
                    // The gene's counts arrive later: its colour map and range wait for them.
                    Some(feature) => {
                        restore.gene = Some(PendingGeneStyle {
                            feature: feature as u32,
                            colour_map,
                            range: layers.numeric_range,
                        });
                    }
                    None => restore.missing = Some(format!("gene {name}")),
                }
            }
            StoredColourBy::Category(name) | StoredColourBy::Numeric(name) => {
                restore.missing = Some(format!("column {name}"));
            }
        }
        restore
    }

    /// A restored gene colouring's map and range, once the gene's counts are on the cells.
    /// Returns false while they are not (another colouring replaced it: nothing to do then).
    pub fn apply_gene_style(&mut self, pending: &PendingGeneStyle) -> bool {
        let Some(cells) = &mut self.cells else { return true };
        if cells.colour_by != ColourBy::Gene(pending.feature) {
            return true;
        }
        let Some(numeric) = &mut cells.numeric else {
            return false;
        };
        if let Some(map) = pending.colour_map {
            numeric.colour_map = map;
        }
        if let Some([min, max]) = pending.range.filter(|[a, b]| a.is_finite() && b > a) {
            (numeric.min, numeric.max) = (min, max);
        }
        cells.numeric_changed();
        true
    }

    /// A restored transcript layer's look, once the transcripts are there.
    pub fn apply_transcript_style(&mut self, stored: &StoredTranscripts) {
        if let Some(transcripts) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
            transcripts.visible = stored.visible;
            transcripts.opacity = stored.opacity.clamp(0.0, 1.0);
            transcripts.radius_px = stored.radius_px;
            // The slider's range (and what the index's histograms count exactly).
            transcripts.min_qv = stored.min_qv.min(40);
            for saved in &stored.genes {
                if let Some(g) = transcripts.index.genes.iter().position(|n| *n == saved.name) {
                    transcripts.gene_colours[g] = from_colour(saved.colour);
                    transcripts.gene_visible[g] = saved.visible;
                }
            }
        }
    }

    /// A session's morphology display on the open morphology layer: channels matched by name,
    /// else by position when the counts agree.
    pub fn restore_morphology_display(&mut self, stored: &StoredMorphologyLayer) {
        let Some(morphology) = &mut self.morphology else { return };
        morphology.visible = stored.visible;
        morphology.opacity = stored.opacity.clamp(0.0, 1.0);
        let same_count = stored.channels.len() == morphology.channels.len();
        for (i, channel) in morphology.channels.iter_mut().enumerate() {
            let saved = stored
                .channels
                .iter()
                .find(|c| c.name == channel.name)
                .or_else(|| stored.channels.get(i).filter(|_| same_count));
            if let Some(saved) = saved {
                let mut style = saved.style;
                style.gamma = style.gamma.clamp(0.1, 10.0);
                channel.style = style;
            }
        }
    }

    /// A session's slide style (visibility and opacity) on the open slide.
    pub fn restore_slide_layer(&mut self, style: StoredSlideLayer) {
        if let Some(slide) = &mut self.slide {
            slide.layer.visible = style.visible;
            slide.layer.opacity = style.opacity.clamp(0.0, 1.0);
        }
    }
}

fn colour(c: Color32) -> [u8; 4] {
    c.to_srgba_unmultiplied()
}

fn from_colour([r, g, b, a]: [u8; 4]) -> Color32 {
    Color32::from_rgba_unmultiplied(r, g, b, a)
}

/// A stored model run's key with the bundle as open now, and the key it was cached under.
pub fn keys_from_stored(run: &StoredModelRun, bundle: &Path) -> (RunKey, RunKey) {
    let key = RunKey {
        bundle: bundle.to_path_buf(),
        n_cells: run.n_cells,
        with_slide: run.with_slide,
        parameters: run.parameters.clone(),
        scope: run.scope,
    };
    let cached_as = RunKey {
        bundle: run
            .cached_bundle
            .as_ref()
            .map_or_else(|| bundle.to_path_buf(), PathBuf::from),
        ..key.clone()
    };
    (key, cached_as)
}

fn stored_run(kind: &str, key: &RunKey) -> StoredModelRun {
    StoredModelRun {
        kind: kind.to_owned(),
        n_cells: key.n_cells,
        with_slide: key.with_slide,
        parameters: key.parameters.clone(),
        scope: key.scope,
        cached_bundle: Some(key.bundle.to_string_lossy().into_owned()),
    }
}

/// The selections as a session file stores them (shapes, names, colours; not the cells).
fn stored_selections(selections: &Selections) -> StoredSelections {
    StoredSelections {
        items: selections
            .items
            .iter()
            .map(|s| StoredSelection {
                name: s.name.clone(),
                colour: colour(s.colour),
                visible: s.visible,
                steps: s.steps.iter().map(stored_step).collect(),
            })
            .collect(),
        active: selections.active,
        compare: selections.compare,
    }
}

fn stored_step(step: &Step) -> StoredStep {
    StoredStep {
        combine: match step.combine {
            Combine::Replace => StoredCombine::Replace,
            Combine::Add => StoredCombine::Add,
            Combine::Subtract => StoredCombine::Subtract,
            Combine::Intersect => StoredCombine::Intersect,
        },
        shape: match &step.shape {
            Shape::Polygon(points) => StoredShape::Polygon {
                points_um: points.clone(),
            },
            Shape::Brush { centers_um, radius_um } => StoredShape::Brush {
                centers_um: centers_um.clone(),
                radius_um: *radius_um,
            },
        },
    }
}

fn step_from_stored(step: &StoredStep) -> Step {
    Step {
        combine: match step.combine {
            StoredCombine::Replace => Combine::Replace,
            StoredCombine::Add => Combine::Add,
            StoredCombine::Subtract => Combine::Subtract,
            StoredCombine::Intersect => Combine::Intersect,
        },
        shape: match &step.shape {
            StoredShape::Polygon { points_um } => Shape::Polygon(points_um.clone()),
            StoredShape::Brush { centers_um, radius_um } => Shape::Brush {
                centers_um: centers_um.clone(),
                radius_um: *radius_um,
            },
        },
    }
}
