//! Sessions in the running app: Save and Save as (a `session-save` job), opening a session (its
//! data opened as jobs, the rest restored as the data arrives), autosave every few seconds when
//! something changed, the window title's unsaved mark, the questions before unsaved changes are
//! dropped, and, at start, the offer to restore the autosave of a session that did not close
//! cleanly (its lock file, touched at every autosave tick, has gone stale). What the document
//! stores and restores is `document::session`'s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::app::ViewerApp;
use crate::app::jobs::{JobKey, JobOutput};
use crate::document::SlideAlignment;
use crate::document::session::{PendingGeneStyle, keys_from_stored};
use crate::io::session_file::{
    SESSION_EXTENSION, SessionFile, StoredModelRun, StoredMorphologyLayer, StoredTranscripts, absolute, read_session,
    write_session,
};
use crate::ui::command::QuitAnswer;
use crate::ui::session_prompts::SessionPrompt;
use crate::util::display_name;
use crate::work::jobs::JobKind;
use crate::work::model_runs::{ClassifierResult, NicheResult, from_cache};

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
    /// The Explorer group files whose columns the session had, resolved.
    group_files: Vec<PathBuf>,
    /// Set once the bundle part (selections, model runs) has been applied.
    bundle_done: bool,
    slide_done: bool,
}

/// The session's bookkeeping: its file, what was saved and autosaved, what waits to be restored,
/// and the questions being asked.
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
    /// Transcript layer settings of a restored session, applied when the transcripts arrive.
    pending_transcripts: Option<StoredTranscripts>,
    /// A restored gene colouring's map and range, applied when the gene's counts arrive.
    pending_gene_style: Option<PendingGeneStyle>,
    /// A restored morphology display, applied when the morphology images have opened.
    pub(super) pending_morphology: Option<StoredMorphologyLayer>,
    /// A Save asked for while another write ran.
    queued_save: Option<PathBuf>,
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

    /// The question to ask now, if any.
    pub fn prompt(&self) -> Option<SessionPrompt> {
        if self.confirm_quit {
            return Some(SessionPrompt::ConfirmQuit {
                has_file: self.path.is_some(),
            });
        }
        if let Some(path) = &self.confirm_open {
            return Some(SessionPrompt::ConfirmOpen {
                file_name: display_name(path),
            });
        }
        self.offer.as_ref().map(|offer| SessionPrompt::RestoreOffer {
            reason: offer.reason.clone(),
            summary: offer.summary.clone(),
            autosave: offer.autosave.display().to_string(),
        })
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
    let wanted = absolute(path).to_string_lossy().into_owned();
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

fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::write(path, std::process::id().to_string())
}

impl ViewerApp {
    /// The session's bookkeeping (its file, autosave, what is being restored).
    pub fn session(&self) -> &SessionState {
        &self.runtime.session
    }

    pub fn session_mut(&mut self) -> &mut SessionState {
        &mut self.runtime.session
    }

    /// Everything a session file holds, with paths relative to `base_dir` (the session's folder).
    pub fn capture_session(&self, base_dir: Option<&Path>) -> SessionFile {
        self.document.capture(base_dir, &self.runtime.viewer.camera)
    }

    /// True when the session differs from what was last saved to its file (or, never saved,
    /// when anything is open or made).
    pub fn has_unsaved_changes(&self) -> bool {
        self.differs_from_saved(&self.capture_session(self.session_dir()))
    }

    /// Whether `now` (captured relative to [`Self::session_dir`]) differs from what was saved.
    fn differs_from_saved(&self, now: &SessionFile) -> bool {
        match &self.runtime.session.saved {
            Some(saved) => saved != now,
            None => *now != SessionFile::default(),
        }
    }

    /// The folder of the session's file (paths are stored relative to it).
    fn session_dir(&self) -> Option<&Path> {
        self.runtime.session.path.as_deref().and_then(Path::parent)
    }

    /// The session as its autosave stores it: tagged with the session file it belongs to.
    fn capture_for_autosave(&self) -> SessionFile {
        let mut session = self.capture_session(self.session_dir());
        session.autosave_of = self
            .runtime
            .session
            .path
            .as_deref()
            .map(|p| absolute(p).to_string_lossy().into_owned());
        session
    }

    /// Opens a session file, first asking whether to drop the current session's unsaved changes.
    pub(super) fn open_session(&mut self, path: &Path) {
        if self.document.has_anything_open() && self.has_unsaved_changes() {
            self.runtime.session.confirm_open = Some(path.to_path_buf());
        } else {
            self.open_session_now(path);
        }
    }

    /// Reads a session file and restores it; a file that cannot be read is named, and its
    /// autosave (if there is one) is offered instead.
    pub(super) fn open_session_now(&mut self, path: &Path) {
        match read_session(path) {
            Ok(session) => {
                self.restore_session(session, Some(path));
                self.runtime.recent.add(path);
            }
            Err(error) => {
                let message = format!("{error:#}");
                let offer = self
                    .runtime
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
                    self.runtime.session.offer = offer;
                } else {
                    self.runtime.toasts.error(message);
                }
            }
        }
    }

    /// Replaces what is open with `session`: the slide and bundle open in the background; the
    /// view, styles, selections and model results follow as they arrive. `path` is the session
    /// file it came from (None: an autosave of an unsaved session).
    pub(super) fn restore_session(&mut self, session: SessionFile, path: Option<&Path>) {
        let file_path = path
            .map(Path::to_path_buf)
            .or_else(|| session.autosave_of.as_ref().map(PathBuf::from));
        let base = file_path.as_deref().and_then(Path::parent);
        // Nothing of the session being replaced may land in the restored one.
        self.jobs.cancel_document_jobs();
        self.document_generation += 1;
        self.runtime.viewer.end_presentation(&self.ctx);
        self.runtime.session.pending_transcripts = None;
        self.runtime.session.pending_gene_style = None;
        self.runtime.session.pending_morphology = session.morphology_layer.clone();
        self.close_compare_slide();
        self.runtime.viewer.split = None;
        self.close_slide();
        self.close_cells();
        let doc = &mut self.document;
        doc.models = Default::default();
        doc.analysis.de = None;
        doc.analysis.nhood = None;
        doc.selections = Default::default();
        doc.annotations
            .restore_stored(session.annotations.clone(), session.annotation_classes.clone());
        doc.bookmarks = crate::document::bookmarks::Bookmarks {
            items: session.bookmarks.clone(),
            current: None,
        };
        self.runtime.viewer.transition = None;
        doc.alignment = session.alignment.as_ref().map(|a| SlideAlignment {
            path: a.file.as_ref().map(|f| f.resolve(base)),
            xenium_px_from_slide_px: cs_xenium::Affine2 {
                rows: a.xenium_px_from_slide_px,
            },
            rms_residual_um: a.rms_residual_um,
        });
        // A session of a cohort brings the cohort (before the bundle: the sample's predictions
        // are found through it); a sample's own record (switching samples) leaves it as it is.
        let mut compare_after = None;
        if let Some(stored) = &session.cohort {
            match crate::document::cohort::CohortState::from_stored(stored, base) {
                Ok(cohort) => {
                    compare_after = stored.compared.clone();
                    self.document.cohort = Some(cohort);
                }
                Err(e) => self.runtime.toasts.error(format!(
                    "The session's cohort cannot be opened: {e}. The sample shown opens alone."
                )),
            }
        }
        let bundle = session.bundle.as_ref().map(|b| b.resolve(base));
        let slide = session.slide.as_ref().map(|s| s.resolve(base));
        if let Some(dir) = &bundle {
            self.open_bundle(dir.clone());
        }
        if let Some(slide) = &slide {
            self.open_slide(slide.clone());
        }
        if let Some(compare) = &session.compare_slide {
            self.open_compare_slide(compare.resolve(base));
        }
        self.runtime.session.path = path.map(Path::to_path_buf);
        // Saved state: a restored session file has no unsaved changes until the user makes some;
        // an autosave restored is unsaved by definition.
        self.runtime.session.saved = path.map(|_| session.clone());
        let group_files = session
            .cell_layer
            .iter()
            .flat_map(|layer| &layer.group_files)
            .map(|f| f.resolve(base))
            .collect();
        self.runtime.session.pending = Some(PendingSession {
            session,
            bundle,
            group_files,
            bundle_done: false,
            slide_done: false,
        });
        self.apply_pending_session();
        if let Some(id) = compare_after {
            self.compare_sample(&id);
        }
    }

    /// Applies the parts of a session being restored whose data has arrived, and the styles that
    /// wait for a gene's counts or the transcripts. Once per frame, after the jobs.
    fn apply_pending_session(&mut self) {
        if let Some(pending) = self.runtime.session.pending_gene_style.clone()
            && !self.jobs.is_running(JobKind::GeneValues)
            && self.document.apply_gene_style(&pending)
        {
            self.runtime.session.pending_gene_style = None;
        }
        if let Some(stored) = &self.runtime.session.pending_transcripts
            && !self.jobs.is_running(JobKind::Transcripts)
        {
            self.document.apply_transcript_style(stored);
            self.runtime.session.pending_transcripts = None;
        }
        let Some(mut pending) = self.runtime.session.pending.take() else {
            return;
        };
        if !pending.bundle_done && !self.jobs.is_running(JobKind::OpenBundle) {
            let doc = &mut self.document;
            let loaded = doc
                .cells
                .as_ref()
                .is_some_and(|c| Some(&c.dir) == pending.bundle.as_ref());
            // No bundle (or it failed to open, which a toast said): the selections' shapes are
            // kept so nothing drawn is lost; they find their cells when a bundle opens.
            let dir = doc.cells.as_ref().filter(|_| loaded).map(|c| c.dir.clone());
            doc.restore_selections(&pending.session.selections);
            if let Some(dir) = dir {
                for run in &pending.session.model_runs {
                    self.restore_model_run(run, &dir);
                }
                if !pending.group_files.is_empty() {
                    self.read_cell_groups(std::mem::take(&mut pending.group_files), true);
                }
            }
            pending.bundle_done = true;
        }
        if !pending.slide_done && !self.jobs.is_running(JobKind::OpenSlide) {
            if let Some(style) = pending.session.slide_layer {
                self.document.restore_slide_layer(style);
            }
            pending.slide_done = true;
        }
        // Columns the styles refer to: model results and imported groups.
        let models_busy = self.jobs.is_running(JobKind::Classifier)
            || self.jobs.is_running(JobKind::Niches)
            || self.jobs.is_running(JobKind::GroupImport);
        if !(pending.bundle_done && pending.slide_done) || models_busy {
            self.runtime.session.pending = Some(pending);
            return;
        }
        // Everything has arrived: styles (after the model columns exist) and the view.
        if let Some(layer) = &pending.session.cell_layer {
            let restore = self.document.restore_cell_layer(layer);
            if let Some(what) = restore.missing {
                self.runtime.toasts.note(format!(
                    "The session coloured cells by {what}, which this bundle does not have."
                ));
            }
            if let Some(gene) = restore.gene {
                self.colour_by_gene(gene.feature);
                self.runtime.session.pending_gene_style = Some(gene);
            }
            if restore.wants_transcripts.is_some() {
                self.load_transcripts();
                self.runtime.session.pending_transcripts = restore.wants_transcripts;
            }
        }
        if let Some(view) = pending.session.view {
            let viewer = &mut self.runtime.viewer;
            viewer.camera.center_in_world = glam::DVec2::from_array(view.center_in_world_um);
            if view.points_per_um.is_finite() && view.points_per_um > 0.0 {
                viewer.camera.points_per_um = view.points_per_um;
            }
            viewer.fit_requested = false;
            viewer.fitted = None;
        }
        if let Some(path) = &self.runtime.session.path {
            self.runtime
                .toasts
                .note(format!("Session {} restored", display_name(path)));
        }
    }

    /// Reads a stored model run's results back from the cache, as the run's job.
    fn restore_model_run(&mut self, run: &StoredModelRun, bundle: &Path) {
        let (key, cached_as) = keys_from_stored(run, bundle);
        let cache = self.runtime.ui.models.cache_dir.clone();
        match run.kind.as_str() {
            "classifier" => {
                let prepared = from_cache::<ClassifierResult>("cell-type predictions", key, cached_as, cache);
                self.start_classifier_run(prepared);
            }
            "niches" => {
                let prepared = from_cache::<NicheResult>("morphology clusters", key, cached_as, cache);
                self.start_niches_run(prepared);
            }
            other => self.runtime.toasts.note(format!(
                "The session holds a model run of unknown kind {other:?}: skipped."
            )),
        }
    }

    /// Writes the session to `path` (Save / Save as) as a job.
    pub(super) fn save_session_as(&mut self, path: PathBuf) {
        let path = if path.extension().is_none() {
            path.with_extension(SESSION_EXTENSION)
        } else {
            path
        };
        let session = self.capture_session(path.parent());
        self.start_session_write(session, Some(path));
    }

    /// Save: to the session's file, or asks for one.
    pub(super) fn save_session(&mut self) {
        match self.runtime.session.path.clone() {
            Some(path) => self.save_session_as(path),
            None => self.ask_for_file(crate::ui::dialogs::DialogPurpose::SaveSession),
        }
    }

    /// Starts writing `session` (to `path`, else to the autosave). Returns false when it could
    /// not start; a Save asked for during another write is made once that one ends.
    fn start_session_write(&mut self, session: SessionFile, path: Option<PathBuf>) -> bool {
        if self.jobs.is_running(JobKind::SessionWrite) {
            if let Some(path) = path {
                self.runtime.session.queued_save = Some(path);
            }
            return false;
        }
        let autosave = self.runtime.session.autosave.clone();
        let label = match &path {
            Some(p) => format!("Saving {}", display_name(p)),
            None => "Autosaving".to_owned(),
        };
        let key = path.clone().map_or(JobKey::None, JobKey::Path);
        let written = self.jobs.spawn(JobKind::SessionWrite, key, label, move |_| {
            JobOutput::SessionWritten(match path {
                Some(path) => write_session(&path, &session).map(|()| Some((path, session))),
                None => (|| {
                    if let Some(autosave) = autosave {
                        write_session(&autosave.file, &session)?;
                        touch(&autosave.lock)?;
                    }
                    Ok(None)
                })(),
            })
        });
        match written {
            Ok(()) => true,
            Err(error) => {
                self.runtime
                    .toasts
                    .error(format!("Cannot start saving the session: {error}"));
                false
            }
        }
    }

    /// A session write ended.
    pub(super) fn session_written(&mut self, result: anyhow::Result<Option<(PathBuf, SessionFile)>>) {
        match result {
            Ok(Some((path, session))) => {
                self.runtime.toasts.note(format!("Session saved to {}", path.display()));
                self.runtime.recent.add(&path);
                let state = &mut self.runtime.session;
                state.path = Some(path);
                state.saved = Some(session);
                state.next_tick = None; // the title loses its mark now
                if std::mem::take(&mut state.quit_after_save) {
                    state.quit_confirmed = true;
                    self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }
            Ok(None) => {}
            Err(error) => {
                // Try again at the next tick; a quit waiting for this save is off.
                self.runtime.session.autosaved = None;
                self.runtime.session.quit_after_save = false;
                self.runtime.toasts.error(format!("{error:#}"));
            }
        }
        if let Some(path) = self.runtime.session.queued_save.take() {
            self.save_session_as(path);
        }
    }

    /// What waits for arriving data, the autosave tick, and the window title. Once per frame.
    pub(super) fn tick_session(&mut self) {
        self.apply_pending_session();
        let ctx = self.ctx.clone();
        let now = Instant::now();
        // Frames come on input, and each frame's repaint requests replace the last one's: ask
        // every frame for one at the next tick.
        if let Some(next) = self.runtime.session.next_tick
            && now < next
        {
            ctx.request_repaint_after(next - now);
            return;
        }
        self.runtime.session.next_tick = Some(now + AUTOSAVE_EVERY);
        ctx.request_repaint_after(AUTOSAVE_EVERY);
        // One capture a tick serves both the title's unsaved mark and the autosave.
        let session = self.capture_for_autosave();
        let unsaved = self.differs_from_saved(&SessionFile {
            autosave_of: None,
            ..session.clone()
        });
        let title = self.runtime.session.title(unsaved);
        if title != self.runtime.session.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.runtime.session.title = title;
        }
        let state = &self.runtime.session;
        // Still running: the lock stays fresh (a stale one means a crash) whatever happens next.
        if let Some(autosave) = &state.autosave {
            let _ = touch(&autosave.lock);
        }
        if state.autosave.is_none() || !state.autosave_enabled || state.pending.is_some() {
            return;
        }
        let nothing_yet = state.autosaved.is_none() && session == SessionFile::default();
        if nothing_yet || state.autosaved.as_ref() == Some(&session) {
            return;
        }
        if self.start_session_write(session.clone(), None) {
            self.runtime.session.autosaved = Some(session);
        }
    }

    /// At a clean exit: a last autosave, then the lock goes (this session did not crash).
    pub(super) fn close_session_cleanly(&mut self) {
        let Some(autosave) = self.runtime.session.autosave.clone() else {
            return;
        };
        if !self.runtime.session.autosave_enabled {
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
    pub(super) fn confirm_quit_if_unsaved(&mut self) {
        if !self.ctx.input(|i| i.viewport().close_requested()) || self.runtime.session.quit_confirmed {
            return;
        }
        if self.document.has_anything_open() && self.has_unsaved_changes() {
            self.ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.runtime.session.confirm_quit = true;
        }
    }

    /// Answers "Quit with unsaved changes?".
    pub(super) fn answer_quit(&mut self, answer: QuitAnswer) {
        let state = &mut self.runtime.session;
        state.confirm_quit = false;
        match answer {
            QuitAnswer::SaveThenQuit => {
                state.quit_after_save = true;
                self.save_session();
            }
            QuitAnswer::QuitWithoutSaving => {
                state.quit_confirmed = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            QuitAnswer::Cancel => {}
        }
    }

    /// Answers "Unsaved changes: opening replaces them": save first, discard, or cancel (None).
    pub(super) fn answer_open_session(&mut self, save_first: Option<bool>) {
        let Some(path) = self.runtime.session.confirm_open.take() else {
            return;
        };
        match save_first {
            Some(true) => match self.runtime.session.path.clone() {
                // Written here, at once: the next session replaces what is captured.
                Some(current) => {
                    let session = self.capture_session(current.parent());
                    match write_session(&current, &session) {
                        Ok(()) => self.open_session_now(&path),
                        Err(error) => self.runtime.toasts.error(format!("{error:#}")),
                    }
                }
                None => self
                    .runtime
                    .toasts
                    .note("This session has no file yet: use Save session as…, then open."),
            },
            Some(false) => self.open_session_now(&path),
            None => {}
        }
    }

    /// Answers the restore offer: restore the autosave, or keep the current session.
    pub(super) fn answer_restore_offer(&mut self, restore: bool) {
        let Some(offer) = self.runtime.session.offer.take() else {
            return;
        };
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
                self.runtime.session.path = of;
                self.runtime.session.saved = None;
                self.runtime.toasts.note(format!(
                    "Restored the autosave {}: save the session to keep it.",
                    offer.autosave.display()
                ));
            }
            Err(error) => self.runtime.toasts.error(format!("{error:#}")),
        }
    }
}
