//! Sessions in the running app: what is open and made, captured as a [`SessionFile`]; opening
//! one (its data opened in the background, the rest restored as the data arrives); Save and Save
//! as; autosave every few seconds when something changed (atomic writes, on a worker thread);
//! and, at start, the offer to restore the autosave of a session that did not close cleanly.
//! A crashed session is one whose lock file (touched at every autosave tick) has gone stale.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use egui::Color32;

use crate::app::{SlideAlignment, ViewerApp, display_name};
use crate::cell_layer::ColourBy;
use crate::jobs::{Job, JobStatus, spawn_job};
use crate::model_runs::{ClassifierResult, NicheResult, RunKey, start_from_cache};
use crate::palettes::ColourMap;
use crate::session_file::{
    SessionFile, StoredAlignment, StoredCellLayer, StoredCellStyle, StoredClass, StoredClassColumn, StoredColourBy,
    StoredModelRun, StoredPath, StoredSlideLayer, StoredTranscripts, StoredView, read_session, write_session,
};

/// How often the session is checked for changes and autosaved.
const AUTOSAVE_EVERY: Duration = Duration::from_secs(15);
/// A lock file untouched for this long belongs to a session that is no longer running.
const STALE_LOCK_AFTER: Duration = Duration::from_secs(90);
/// Autosaves older than this are removed at start.
const KEEP_AUTOSAVES_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where this process autosaves, and the lock that says it is running.
#[derive(Debug, Clone)]
pub struct Autosave {
    pub dir: PathBuf,
    pub file: PathBuf,
    pub lock: PathBuf,
}

impl Autosave {
    fn for_process(dir: &Path) -> Self {
        let pid = std::process::id();
        Self {
            dir: dir.to_path_buf(),
            file: dir.join(format!("session-{pid}.json")),
            lock: dir.join(format!("session-{pid}.lock")),
        }
    }
}

/// An autosave the user may restore: after a crash, or instead of a session file that could not
/// be read.
#[derive(Debug, Clone)]
pub struct RestoreOffer {
    /// Why it is offered, in a sentence.
    pub reason: String,
    pub autosave: PathBuf,
    pub summary: String,
    pub saved_at: SystemTime,
    /// The crashed session's lock, removed once the user has answered.
    stale_lock: Option<PathBuf>,
}

/// A session being restored: what waits for its data to arrive.
#[derive(Debug, Clone)]
struct PendingSession {
    session: SessionFile,
    bundle: Option<PathBuf>,
    /// Set once the bundle part (selections, model runs) has been applied.
    bundle_done: bool,
    slide_done: bool,
}

/// A session write: Save and Save as give back the file and what was written; autosaves nothing.
type WriteJob = Job<anyhow::Result<Option<(PathBuf, SessionFile)>>>;

#[derive(Default)]
pub struct SessionState {
    /// The session file this session was opened from or last saved to.
    pub path: Option<PathBuf>,
    /// The session as last written to `path` (to tell whether there are unsaved changes).
    saved: Option<SessionFile>,
    /// The session as last autosaved.
    autosaved: Option<SessionFile>,
    pub autosave: Option<Autosave>,
    /// The preference: autosave at all.
    pub autosave_enabled: bool,
    next_tick: Option<Instant>,
    pending: Option<PendingSession>,
    pub offer: Option<RestoreOffer>,
    /// A session file to open once the user agrees to drop the current unsaved changes.
    pub confirm_open: Option<PathBuf>,
    write_job: Option<WriteJob>,
    /// Transcript layer settings of a restored session, applied when the transcripts arrive.
    pending_transcripts: Option<StoredTranscripts>,
    /// A Save asked for while another write ran.
    queued_save: Option<PathBuf>,
    /// A restored gene colouring's map and range, applied when the gene's counts arrive.
    pub(crate) pending_gene_style: Option<(u32, Option<ColourMap>, Option<[f64; 2]>)>,
    /// The window was asked to close with unsaved changes: the question is shown.
    pub confirm_quit: bool,
    /// Close the window once the Save under way has been written.
    pub quit_after_save: bool,
    /// The user chose to quit: the next close request goes through.
    quit_confirmed: bool,
    /// The window title last set.
    title: String,
}

impl SessionState {
    /// Autosaves into `dir` (None: no autosave, as in tests that do not ask for it). Finds
    /// sessions that did not close cleanly and offers the newest one's autosave.
    pub fn new(autosave_dir: Option<&Path>) -> Self {
        let mut state = Self::default();
        let Some(dir) = autosave_dir else { return state };
        if let Err(error) = std::fs::create_dir_all(dir) {
            log::warn!("autosave disabled: cannot create {}: {error}", dir.display());
            return state;
        }
        state.offer = crashed_session(dir);
        let autosave = Autosave::for_process(dir);
        if let Err(error) = std::fs::write(&autosave.lock, std::process::id().to_string()) {
            log::warn!("autosave disabled: cannot write {}: {error}", autosave.lock.display());
            return state;
        }
        state.autosave = Some(autosave);
        state.autosave_enabled = true;
        state
    }

    /// A name for the window title: the session file's, or "unsaved session".
    pub fn title(&self, unsaved_changes: bool) -> String {
        let name = self
            .path
            .as_deref()
            .map_or_else(|| "unsaved session".to_owned(), display_name);
        format!(
            "CellSymphony Viewer — {name}{}",
            if unsaved_changes { " •" } else { "" }
        )
    }

    /// Checks for changes (and autosaves them) at the next frame instead of at the next tick.
    pub fn autosave_soon(&mut self) {
        self.next_tick = None;
    }

    pub fn is_restoring(&self) -> bool {
        self.pending.is_some()
    }

    pub fn is_writing(&self) -> bool {
        self.write_job.is_some()
    }
}

/// The newest autosave whose lock went stale (its app did not close cleanly).
fn crashed_session(dir: &Path) -> Option<RestoreOffer> {
    let now = SystemTime::now();
    let mut newest: Option<RestoreOffer> = None;
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
        let age = now.duration_since(modified).unwrap_or_default();
        let is = |ext: &str| path.extension().is_some_and(|e| e == ext);
        if is("json") && age > KEEP_AUTOSAVES_FOR && !path.with_extension("lock").exists() {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if !is("lock") || age < STALE_LOCK_AFTER {
            continue;
        }
        let autosave = path.with_extension("json");
        let session = match read_session(&autosave) {
            Ok(session)
                if session.slide.is_some()
                    || session.bundle.is_some()
                    || !session.selections.items.is_empty()
                    || !session.annotations.is_empty()
                    || !session.bookmarks.is_empty() =>
            {
                session
            }
            _ => {
                // Nothing (readable) to restore: the lock alone is of no use.
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        let saved_at = std::fs::metadata(&autosave)
            .and_then(|m| m.modified())
            .unwrap_or(modified);
        if newest.as_ref().is_some_and(|n| n.saved_at >= saved_at) {
            continue;
        }
        newest = Some(RestoreOffer {
            reason: format!(
                "CellSymphony did not close cleanly {}.",
                describe_age(now.duration_since(saved_at).unwrap_or_default())
            ),
            summary: session.summary(),
            autosave,
            saved_at,
            stale_lock: Some(path),
        });
    }
    newest
}

fn describe_age(age: Duration) -> String {
    let minutes = age.as_secs() / 60;
    match minutes {
        0 => "less than a minute ago".to_owned(),
        1..=119 => format!("{minutes} minutes ago"),
        _ if minutes < 48 * 60 => format!("{} hours ago", minutes / 60),
        _ => format!("{} days ago", minutes / (24 * 60)),
    }
}

/// The newest autosave that belongs to the session file `path`.
fn autosave_of(dir: &Path, path: &Path) -> Option<(PathBuf, SessionFile, SystemTime)> {
    let wanted = crate::session_file::absolute(path).to_string_lossy().into_owned();
    let mut best: Option<(PathBuf, SessionFile, SystemTime)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let file = entry.path();
        if file.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(session) = read_session(&file) else { continue };
        if session.autosave_of.as_deref() != Some(wanted.as_str()) {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if best.as_ref().is_none_or(|b| modified > b.2) {
            best = Some((file, session, modified));
        }
    }
    best
}

fn colour(c: Color32) -> [u8; 4] {
    c.to_srgba_unmultiplied()
}

fn from_colour([r, g, b, a]: [u8; 4]) -> Color32 {
    Color32::from_rgba_unmultiplied(r, g, b, a)
}

/// The run's key with the bundle as open now, and the key it was cached under.
fn keys_from_stored(run: &StoredModelRun, bundle: &Path) -> (RunKey, RunKey) {
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

impl ViewerApp {
    /// Everything a session file holds, with paths relative to `base_dir` (the session's folder).
    pub fn capture_session(&self, base_dir: Option<&Path>) -> SessionFile {
        let mut session = SessionFile {
            slide: self.slide.as_ref().map(|s| StoredPath::new(&s.path, base_dir)),
            bundle: self.cells.as_ref().map(|c| StoredPath::new(&c.dir, base_dir)),
            compare_slide: self.compare.as_ref().map(|c| StoredPath::new(&c.path, base_dir)),
            alignment: self.alignment.as_ref().map(|a| StoredAlignment {
                file: a.path.as_deref().map(|p| StoredPath::new(p, base_dir)),
                xenium_px_from_slide_px: a.xenium_px_from_slide_px.rows,
                rms_residual_um: a.rms_residual_um,
            }),
            view: (self.slide.is_some() || self.cells.is_some()).then(|| StoredView {
                center_in_world_um: self.view.camera.center_in_world.to_array(),
                points_per_um: self.view.camera.points_per_um,
            }),
            slide_layer: self.slide.as_ref().map(|s| StoredSlideLayer {
                visible: s.layer.visible,
                opacity: s.layer.opacity,
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
                    }),
                }
            }),
            selections: self.selections.to_stored(),
            annotations: self.annotations.items.clone(),
            annotation_classes: self.annotations.classes_to_store(),
            bookmarks: self.bookmarks.items.clone(),
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

    /// True when the session differs from what was last saved to its file (or, never saved,
    /// when anything is open or made).
    pub fn has_unsaved_changes(&self) -> bool {
        self.differs_from_saved(&self.capture_session(self.session_dir()))
    }

    /// Whether `now` (captured relative to [`Self::session_dir`]) differs from what was saved.
    fn differs_from_saved(&self, now: &SessionFile) -> bool {
        match &self.session.saved {
            Some(saved) => saved != now,
            None => *now != SessionFile::default(),
        }
    }

    /// The folder of the session's file (paths are stored relative to it).
    fn session_dir(&self) -> Option<&Path> {
        self.session.path.as_deref().and_then(Path::parent)
    }

    /// The session as its autosave stores it: tagged with the session file it belongs to.
    fn capture_for_autosave(&self) -> SessionFile {
        let mut session = self.capture_session(self.session_dir());
        session.autosave_of = self
            .session
            .path
            .as_deref()
            .map(|p| crate::session_file::absolute(p).to_string_lossy().into_owned());
        session
    }

    /// Whether anything is open or made that a prompt about unsaved changes would be about.
    fn has_anything_open(&self) -> bool {
        self.slide.is_some()
            || self.cells.is_some()
            || !self.selections.items.is_empty()
            || !self.annotations.items.is_empty()
            || !self.bookmarks.items.is_empty()
    }

    /// Opens a session file, first asking whether to drop the current session's unsaved changes.
    pub fn open_session(&mut self, path: &Path) {
        if self.has_anything_open() && self.has_unsaved_changes() {
            self.session.confirm_open = Some(path.to_path_buf());
        } else {
            self.open_session_now(path);
        }
    }

    /// Reads a session file and restores it; a file that cannot be read is named, and its
    /// autosave (if there is one) is offered instead.
    pub fn open_session_now(&mut self, path: &Path) {
        match read_session(path) {
            Ok(session) => {
                self.restore_session(session, Some(path));
                self.recent.add(path);
            }
            Err(error) => {
                let message = format!("{error:#}");
                let offer = self
                    .session
                    .autosave
                    .as_ref()
                    .and_then(|a| autosave_of(&a.dir, path))
                    .map(|(autosave, session, saved_at)| RestoreOffer {
                        reason: format!("{message}. Its autosave can be opened instead."),
                        summary: session.summary(),
                        autosave,
                        saved_at,
                        stale_lock: None,
                    });
                if offer.is_some() {
                    self.session.offer = offer;
                } else {
                    self.toasts.error(message);
                }
            }
        }
    }

    /// Replaces what is open with `session`: the slide and bundle open in the background; the
    /// view, styles, selections and model results follow as they arrive. `path` is the session
    /// file it came from (None: an autosave of an unsaved session).
    pub fn restore_session(&mut self, session: SessionFile, path: Option<&Path>) {
        let file_path = path
            .map(Path::to_path_buf)
            .or_else(|| session.autosave_of.as_ref().map(PathBuf::from));
        let base = file_path.as_deref().and_then(Path::parent);
        // Nothing of the session being replaced may land in the restored one.
        self.cancel_background_loads();
        let ctx = self.ctx.clone();
        self.end_presentation(&ctx);
        self.session.pending_transcripts = None;
        self.session.pending_gene_style = None;
        self.close_compare_slide();
        self.split = None;
        self.close_slide();
        self.close_cells();
        self.selections = Default::default();
        self.annotations
            .restore_stored(session.annotations.clone(), session.annotation_classes.clone());
        self.bookmarks = crate::bookmarks::Bookmarks {
            items: session.bookmarks.clone(),
            current: None,
        };
        self.transition = None;
        self.alignment = session.alignment.as_ref().map(|a| SlideAlignment {
            path: a.file.as_ref().map(|f| f.resolve(base)),
            xenium_px_from_slide_px: cs_xenium::Affine2 {
                rows: a.xenium_px_from_slide_px,
            },
            rms_residual_um: a.rms_residual_um,
        });
        let bundle = session.bundle.as_ref().map(|b| b.resolve(base));
        let slide = session.slide.as_ref().map(|s| s.resolve(base));
        if let Some(dir) = &bundle {
            self.open_bundle(dir.clone());
        }
        if let Some(slide) = &slide {
            self.open_slide_path(slide.clone());
        }
        if let Some(compare) = &session.compare_slide {
            self.open_compare_slide(compare.resolve(base));
        }
        self.session.path = path.map(Path::to_path_buf);
        // Saved state: a restored session file has no unsaved changes until the user makes some;
        // an autosave restored is unsaved by definition.
        self.session.saved = path.map(|_| session.clone());
        self.session.pending = Some(PendingSession {
            session,
            bundle,
            bundle_done: false,
            slide_done: false,
        });
        self.apply_pending_session();
    }

    /// Applies the parts of a session being restored whose data has arrived. Once per frame,
    /// after the background jobs.
    pub fn apply_pending_session(&mut self) {
        let Some(mut pending) = self.session.pending.take() else {
            return;
        };
        if !pending.bundle_done && !self.is_opening_bundle() {
            let loaded = self
                .cells
                .as_ref()
                .is_some_and(|c| Some(&c.dir) == pending.bundle.as_ref());
            match &self.cells {
                Some(cells) if loaded => {
                    self.selections
                        .restore_stored(&pending.session.selections, &cells.index, cells.len());
                    let dir = cells.dir.clone();
                    for run in &pending.session.model_runs {
                        self.restore_model_run(run, &dir);
                    }
                }
                _ => {
                    // No bundle (or it failed to open, which a toast said): keep the selections'
                    // shapes so nothing drawn is lost; they find their cells when a bundle opens.
                    let empty = cs_analysis::GridIndex::build(&[], &[]);
                    self.selections.restore_stored(&pending.session.selections, &empty, 0);
                }
            }
            pending.bundle_done = true;
        }
        if !pending.slide_done && !self.is_opening_slide() {
            if let (Some(slide), Some(style)) = (&mut self.slide, pending.session.slide_layer) {
                slide.layer.visible = style.visible;
                slide.layer.opacity = style.opacity.clamp(0.0, 1.0);
            }
            pending.slide_done = true;
        }
        let models_busy = self.models.classifier_run.is_some() || self.models.niche_run.is_some();
        if !(pending.bundle_done && pending.slide_done) || models_busy {
            self.session.pending = Some(pending);
            return;
        }
        // Everything has arrived: styles (after the model columns exist) and the view.
        if let Some(layer) = &pending.session.cell_layer {
            self.restore_cell_layer(layer);
        }
        if let Some(view) = pending.session.view {
            self.view.camera.center_in_world = glam::DVec2::from_array(view.center_in_world_um);
            if view.points_per_um.is_finite() && view.points_per_um > 0.0 {
                self.view.camera.points_per_um = view.points_per_um;
            }
            self.view.fit_requested = false;
            self.view.fitted = None;
        }
        if let Some(path) = &self.session.path {
            self.toasts.note(format!("Session {} restored", display_name(path)));
        }
    }

    fn restore_model_run(&mut self, run: &StoredModelRun, bundle: &Path) {
        let (key, cached_as) = keys_from_stored(run, bundle);
        let cache = self.models.cache_dir.clone();
        let ctx = self.ctx.clone();
        let started = match run.kind.as_str() {
            "classifier" => start_from_cache::<ClassifierResult>(
                "session-model",
                "cell-type predictions",
                key,
                cached_as,
                cache,
                &ctx,
            )
            .map(|r| self.models.classifier_run = Some(r)),
            "niches" => {
                start_from_cache::<NicheResult>("session-model", "morphology clusters", key, cached_as, cache, &ctx)
                    .map(|r| self.models.niche_run = Some(r))
            }
            other => {
                self.toasts.note(format!(
                    "The session holds a model run of unknown kind {other:?}: skipped."
                ));
                Ok(())
            }
        };
        if let Err(error) = started {
            self.toasts
                .error(format!("Cannot start restoring the model results: {error}"));
        }
    }

    fn restore_cell_layer(&mut self, layers: &StoredCellLayer) {
        let Some(cells) = &mut self.cells else { return };
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
        let mut missing = None;
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
                    Some(feature) => {
                        // The gene's counts arrive later: its colour map and range wait for them.
                        self.session.pending_gene_style = Some((feature as u32, colour_map, layers.numeric_range));
                        self.colour_by_gene(feature as u32);
                    }
                    None => missing = Some(format!("gene {name}")),
                }
            }
            StoredColourBy::Category(name) | StoredColourBy::Numeric(name) => missing = Some(format!("column {name}")),
        }
        if let Some(what) = missing {
            self.toasts.note(format!(
                "The session coloured cells by {what}, which this bundle does not have."
            ));
        }
        if layers.transcripts.is_some() {
            self.load_transcripts();
            self.session.pending_transcripts = layers.transcripts.clone();
        }
    }

    /// Writes the session to `path` (Save / Save as) on a worker thread.
    pub fn save_session_as(&mut self, path: PathBuf) {
        let path = if path.extension().is_none() {
            path.with_extension(crate::session_file::SESSION_EXTENSION)
        } else {
            path
        };
        let session = self.capture_session(path.parent());
        self.start_session_write(session, Some(path));
    }

    /// Save: to the session's file, or asks for one.
    pub fn save_session(&mut self) {
        match self.session.path.clone() {
            Some(path) => self.save_session_as(path),
            None => self.ask_for_file(crate::app::DialogPurpose::SaveSession),
        }
    }

    /// Starts writing `session` (to `path`, else to the autosave). Returns false when it could
    /// not start; a Save asked for during another write is made once that one ends.
    fn start_session_write(&mut self, session: SessionFile, path: Option<PathBuf>) -> bool {
        if self.session.write_job.is_some() {
            if let Some(path) = path {
                self.session.queued_save = Some(path);
            }
            return false;
        }
        let autosave = self.session.autosave.clone();
        let label = match &path {
            Some(p) => format!("Saving {}", display_name(p)),
            None => "Autosaving".to_owned(),
        };
        let job = spawn_job("session-save", label, self.repaint_callback(), move |_| match path {
            Some(path) => {
                write_session(&path, &session)?;
                Ok(Some((path, session)))
            }
            None => {
                if let Some(autosave) = autosave {
                    write_session(&autosave.file, &session)?;
                    std::fs::write(&autosave.lock, std::process::id().to_string())?;
                }
                Ok(None)
            }
        });
        match job {
            Ok(job) => {
                self.session.write_job = Some(job);
                true
            }
            Err(error) => {
                self.toasts.error(format!("Cannot start saving the session: {error}"));
                false
            }
        }
    }

    /// The autosave tick, the end of writes, and the window title. Once per frame.
    pub fn tick_session(&mut self, ctx: &egui::Context) {
        if let Some(job) = &self.session.write_job {
            match job.poll() {
                JobStatus::Running => {}
                JobStatus::Done(result) => {
                    self.session.write_job = None;
                    match result {
                        Ok(Some((path, session))) => {
                            self.toasts.note(format!("Session saved to {}", path.display()));
                            self.recent.add(&path);
                            self.session.path = Some(path);
                            self.session.saved = Some(session);
                            self.session.next_tick = None; // the title loses its mark now
                            if std::mem::take(&mut self.session.quit_after_save) {
                                self.session.quit_confirmed = true;
                                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                            }
                        }
                        Ok(None) => {}
                        Err(error) => {
                            // Try again at the next tick; a quit waiting for this save is off.
                            self.session.autosaved = None;
                            self.session.quit_after_save = false;
                            self.toasts.error(format!("{error:#}"));
                        }
                    }
                    if let Some(path) = self.session.queued_save.take() {
                        self.save_session_as(path);
                    }
                }
                JobStatus::Lost => {
                    self.session.write_job = None;
                    self.toasts.error("Saving the session stopped unexpectedly.");
                }
            }
        }
        self.apply_pending_session();
        if let Some(stored) = &self.session.pending_transcripts
            && !self.is_loading_transcripts()
        {
            if let Some(transcripts) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
                transcripts.visible = stored.visible;
                transcripts.opacity = stored.opacity.clamp(0.0, 1.0);
                transcripts.radius_px = stored.radius_px;
            }
            self.session.pending_transcripts = None;
        }
        let now = Instant::now();
        // Frames come on input, and each frame's repaint requests replace the last one's: ask
        // every frame for one at the next tick.
        if let Some(next) = self.session.next_tick
            && now < next
        {
            ctx.request_repaint_after(next - now);
            return;
        }
        self.session.next_tick = Some(now + AUTOSAVE_EVERY);
        ctx.request_repaint_after(AUTOSAVE_EVERY);
        // One capture a tick serves both the title's unsaved mark and the autosave.
        let session = self.capture_for_autosave();
        let unsaved = self.differs_from_saved(&SessionFile {
            autosave_of: None,
            ..session.clone()
        });
        let title = self.session.title(unsaved);
        if title != self.session.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.session.title = title;
        }
        // Still running: the lock stays fresh (a stale one means a crash) whatever happens next.
        if let Some(autosave) = &self.session.autosave {
            let _ = touch(&autosave.lock);
        }
        if self.session.autosave.is_none() || !self.session.autosave_enabled || self.session.pending.is_some() {
            return;
        }
        let nothing_yet = self.session.autosaved.is_none() && session == SessionFile::default();
        if nothing_yet || self.session.autosaved.as_ref() == Some(&session) {
            return;
        }
        if self.start_session_write(session.clone(), None) {
            self.session.autosaved = Some(session);
        }
    }

    /// At a clean exit: a last autosave, then the lock goes (this session did not crash).
    pub fn close_session_cleanly(&mut self) {
        let Some(autosave) = self.session.autosave.clone() else {
            return;
        };
        if !self.session.autosave_enabled {
            let _ = std::fs::remove_file(&autosave.lock);
            return;
        }
        let session = self.capture_for_autosave();
        if session != SessionFile::default()
            && let Err(error) = write_session(&autosave.file, &session)
        {
            log::warn!("last autosave failed: {error:#}");
        }
        let _ = std::fs::remove_file(&autosave.lock);
    }

    /// A close request (window button, Quit) with unsaved changes is held back and the user asked.
    pub fn confirm_quit_if_unsaved(&mut self, ctx: &egui::Context) {
        if !ctx.input(|i| i.viewport().close_requested()) || self.session.quit_confirmed {
            return;
        }
        if self.has_anything_open() && self.has_unsaved_changes() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.session.confirm_quit = true;
        }
    }

    /// Answers the restore offer: restore the autosave, or keep the current session.
    pub fn answer_restore_offer(&mut self, restore: bool) {
        let Some(offer) = self.session.offer.take() else { return };
        if let Some(lock) = &offer.stale_lock {
            let _ = std::fs::remove_file(lock);
        }
        if !restore {
            return;
        }
        match read_session(&offer.autosave) {
            Ok(session) => {
                let of = session.autosave_of.clone().map(PathBuf::from);
                self.restore_session(session, None);
                // The restored work belongs to its session file, if it had one, but is unsaved.
                self.session.path = of;
                self.session.saved = None;
                self.toasts.note(format!(
                    "Restored the autosave {}: save the session to keep it.",
                    offer.autosave.display()
                ));
            }
            Err(error) => self.toasts.error(format!("{error:#}")),
        }
    }
}

fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::write(path, std::process::id().to_string())
}

/// A fixed window in the middle of the screen for a question about the session.
fn prompt_window(title: &str) -> egui::Window<'_> {
    egui::Window::new(title)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
}

/// The restore offer, or the question before unsaved changes are dropped, as a window in the
/// middle of the screen.
pub fn session_prompts_ui(ctx: &egui::Context, app: &mut ViewerApp) {
    if app.session.confirm_quit {
        let mut answer = None;
        prompt_window("Quit with unsaved changes?").show(ctx, |ui| {
            ui.set_max_width(460.0);
            ui.label("This session has changes that are not saved in a session file.");
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                let save = if app.session.path.is_some() {
                    "Save, then quit"
                } else {
                    "Save as…, then quit"
                };
                if ui.button(save).clicked() {
                    answer = Some(0);
                }
                if ui
                    .button("Quit without saving")
                    .on_hover_text("The autosave keeps this session's last state")
                    .clicked()
                {
                    answer = Some(1);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(2);
                }
            });
        });
        match answer {
            Some(0) => {
                app.session.confirm_quit = false;
                app.session.quit_after_save = true;
                app.save_session();
            }
            Some(1) => {
                app.session.confirm_quit = false;
                app.session.quit_confirmed = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Some(_) => app.session.confirm_quit = false,
            None => {}
        }
        return;
    }
    if let Some(path) = app.session.confirm_open.clone() {
        let mut answer = None;
        prompt_window("Unsaved changes").show(ctx, |ui| {
            ui.set_max_width(460.0);
            ui.label(format!(
                "This session has changes that are not saved. Opening {} replaces it.",
                display_name(&path)
            ));
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui.button("Save, then open").clicked() {
                    answer = Some(Some(true));
                }
                if ui.button("Discard changes and open").clicked() {
                    answer = Some(Some(false));
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(None);
                }
            });
        });
        match answer {
            Some(Some(save_first)) => {
                app.session.confirm_open = None;
                if save_first {
                    match app.session.path.clone() {
                        // Written here, at once: the next session replaces what is captured.
                        Some(current) => {
                            let session = app.capture_session(current.parent());
                            match write_session(&current, &session) {
                                Ok(()) => app.open_session_now(&path),
                                Err(error) => app.toasts.error(format!("{error:#}")),
                            }
                        }
                        None => app
                            .toasts
                            .note("This session has no file yet: use Save session as…, then open."),
                    }
                } else {
                    app.open_session_now(&path);
                }
            }
            Some(None) => app.session.confirm_open = None,
            None => {}
        }
        return;
    }
    let Some(offer) = &app.session.offer else { return };
    let mut answer = None;
    prompt_window("Restore the session?").show(ctx, |ui| {
        ui.set_max_width(460.0);
        ui.label(&offer.reason);
        ui.add_space(4.0);
        ui.label(format!("The autosave holds: {}.", offer.summary));
        ui.label(egui::RichText::new(offer.autosave.display().to_string()).small().weak());
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Restore").clicked() {
                answer = Some(true);
            }
            if ui.button("Not now").clicked() {
                answer = Some(false);
            }
        });
    });
    if let Some(restore) = answer {
        app.answer_restore_offer(restore);
    }
}
