//! What panels and windows ask for: one [`Command`] enum, queued through the [`CommandSender`]
//! every panel is handed and applied once per frame by the shell (as egui's demo app and
//! rerun's `SystemCommand` do). Panels never start work or change another part's state
//! themselves.

use std::cell::RefCell;
use std::path::PathBuf;

use cs_models::ComputeDevice;
use glam::DVec2;

use crate::document::Edit;
use crate::ui::dialogs::DialogPurpose;
use crate::ui::preferences::Preferences;
use crate::viewer::tools::Tool;
use crate::work::analysis::NhoodSettings;
use crate::work::jobs::JobKind;

/// The panels and windows that can be shown or hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    LayersPanel,
    PropertiesPanel,
    Bookmarks,
    Preferences,
    Shortcuts,
    ExportView,
}

/// How the user answered "Quit with unsaved changes?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitAnswer {
    SaveThenQuit,
    QuitWithoutSaving,
    Cancel,
}

/// One request to the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A change to the document.
    Edit(Edit),

    // Files and sessions.
    /// Opens whatever the path is (folder: bundle, `.csv`: alignment, session file, slide).
    OpenPath(PathBuf),
    AskForFile(DialogPurpose),
    /// Shows this sample of the open cohort (the one shown is kept as it was).
    SwitchSample(String),
    /// Shows this sample of the open cohort beside the one shown (the split view's right pane).
    CompareSample(String),
    /// Applies the cohort tab's classifier or niche model to these samples.
    ApplyCohortModel {
        samples: Vec<String>,
        kind: crate::work::cohort::AppliedKind,
    },
    /// Compares the cohort's samples' shares of each class of `column` (or `predicted`).
    CompareCohort {
        column: String,
    },
    /// Generates (once) and opens the synthetic demo tissue; hard: the cell-typing benchmark.
    OpenDemo(cs_synth::Difficulty),
    CloseSlide,
    CloseCompareSlide,
    CloseCells,
    SaveSession,
    /// The restore offer: restore the autosave (true) or keep the current session.
    AnswerRestoreOffer(bool),
    AnswerQuit(QuitAnswer),
    /// Opening a session over unsaved changes: save first (Some(true)), discard (Some(false)),
    /// or cancel (None).
    AnswerOpenSession(Option<bool>),

    // Layers and background reads.
    ColourByGene(u32),
    LoadTranscripts,
    StartLandmarks,
    /// Takes back the last landmark clicked.
    UndoLandmark,
    CloseLandmarks,
    /// The landmark fit applied as the alignment.
    ApplyLandmarks {
        xenium_px_from_slide_px: cs_xenium::Affine2,
        rms_residual_um: f64,
    },
    ShowAssociatedImage(Option<String>),

    // Analyses and models.
    RunDifferentialExpression,
    RunNhood(NhoodSettings),
    CancelNhood,
    RunClassifier,
    RunNiches,
    /// Trains every variant and the baselines on the same splits (the Compare models table).
    CompareModels,
    /// Low-confidence predictions show as "uncertain" below this confidence (0: none do).
    SetUncertainBelow(f32),
    /// Predicts the Models tab's genes from the H&E over the whole slide.
    RunVirtualExpression,
    /// Which gene the virtual-expression heatmap shows, and whether the single view shows it.
    ShowVirtualGene {
        gene: usize,
        visible: bool,
    },
    /// The split view with the virtual heatmap on the left and the measured one on the right.
    SplitVirtualMeasured,
    /// Asks a running job of this kind to stop (a model run ends at its next check).
    CancelJob(JobKind),
    /// Copies the kept model folder `from` to `to`.
    SaveModel {
        from: PathBuf,
        to: PathBuf,
    },

    // The viewer.
    Fit,
    SetMagnification(f64),
    CentreOn(DVec2),
    UnpinCell,
    ArmTool(Tool),
    SetBrushRadius(f32),
    SetLabelText(String),
    SetDimOutside(bool),
    SetSplitView(bool),
    SetPanInertia(bool),
    GoToBookmark(usize),
    BookmarkCurrentView,
    StartPresentation,
    PresentStep(usize),
    EndPresentation,
    CancelViewExport,

    // Windows and preferences.
    ShowWindow(Window, bool),
    ToggleWindow(Window),
    SetPreferences(Preferences),
    SetModelDevice(ComputeDevice),
    ClearModelCache,
}

/// Where panels send their commands (interior mutability, so a shared panel context can send).
#[derive(Default)]
pub struct CommandSender {
    queue: RefCell<Vec<Command>>,
}

impl CommandSender {
    pub fn send(&self, command: Command) {
        self.queue.borrow_mut().push(command);
    }

    pub fn edit(&self, edit: Edit) {
        self.send(Command::Edit(edit));
    }

    /// The commands sent since the last call, in order.
    pub fn take(&self) -> Vec<Command> {
        std::mem::take(&mut *self.queue.borrow_mut())
    }
}
