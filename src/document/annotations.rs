//! The annotations of a document: the list, their classes (QuPath's defaults first), the class
//! new ones get, the selected one, and undo/redo over every edit (one order with the selections,
//! see [`crate::document::history`]). The records themselves are [`crate::io::records`]; their
//! GeoJSON is [`crate::io::annotation_geojson`]. No widgets here.

use egui::Color32;

use crate::document::history::EditHistory;
use crate::io::annotation_geojson::ImportedAnnotation;
use crate::io::records::{Annotation, AnnotationClass, AnnotationShape};

/// How many edits undo can take back.
const HISTORY_LIMIT: usize = 200;

/// What undo restores.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedAnnotations {
    items: Vec<Annotation>,
    classes: Vec<AnnotationClass>,
}

impl SavedAnnotations {
    fn of(items: &[Annotation], classes: &[AnnotationClass]) -> Self {
        Self {
            items: items.to_vec(),
            classes: classes.to_vec(),
        }
    }
}

/// The annotations of a session, their classes and their edit history.
#[derive(Debug, Clone)]
pub struct Annotations {
    pub items: Vec<Annotation>,
    pub classes: Vec<AnnotationClass>,
    /// The class new annotations get.
    pub current_class: usize,
    /// The annotation selected in the list (highlighted in the viewer).
    pub selected: Option<usize>,
    /// Show lengths and areas next to the annotations in the viewer.
    pub show_measurements: bool,
    history: EditHistory<SavedAnnotations, HISTORY_LIMIT>,
}

/// QuPath's default classes, with its colours.
fn default_classes() -> Vec<AnnotationClass> {
    [
        ("Tumor", [200, 0, 0]),
        ("Stroma", [150, 200, 150]),
        ("Immune cells", [160, 90, 160]),
        ("Necrosis", [50, 50, 50]),
        ("Other", [255, 200, 0]),
        ("Region*", [0, 0, 180]),
    ]
    .into_iter()
    .map(|(name, [r, g, b])| AnnotationClass {
        name: name.to_owned(),
        colour: [r, g, b, 255],
    })
    .collect()
}

impl Default for Annotations {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            classes: default_classes(),
            current_class: 0,
            selected: None,
            show_measurements: true,
            history: EditHistory::default(),
        }
    }
}

impl Annotations {
    pub fn colour_of(&self, annotation: &Annotation) -> Color32 {
        self.classes
            .get(annotation.class)
            .map_or(Color32::YELLOW, AnnotationClass::colour32)
    }

    pub fn class_name(&self, annotation: &Annotation) -> &str {
        self.classes.get(annotation.class).map_or("", |c| c.name.as_str())
    }

    /// Call before an edit, so that undo can take it back.
    pub fn remember(&mut self) {
        self.history.remember(SavedAnnotations::of(&self.items, &self.classes));
    }

    /// The undo and redo stacks (their edit numbers order Ctrl+Z with the selections').
    pub fn history(&self) -> &EditHistory<SavedAnnotations, HISTORY_LIMIT> {
        &self.history
    }

    /// Forgets what redo could make again (an edit elsewhere came after it).
    pub fn clear_redo(&mut self) {
        self.history.clear_redo();
    }

    pub fn undo(&mut self) {
        if let Some(saved) = self.history.undo(|| SavedAnnotations::of(&self.items, &self.classes)) {
            self.restore(saved);
        }
    }

    pub fn redo(&mut self) {
        if let Some(saved) = self.history.redo(|| SavedAnnotations::of(&self.items, &self.classes)) {
            self.restore(saved);
        }
    }

    fn restore(&mut self, saved: SavedAnnotations) {
        self.items = saved.items;
        self.classes = saved.classes;
        self.selected = self.selected.filter(|&s| s < self.items.len());
        self.current_class = self.current_class.min(self.classes.len().saturating_sub(1));
    }

    /// Adds an annotation of the current class and selects it.
    pub fn add(&mut self, shape: AnnotationShape) -> usize {
        self.remember();
        self.items.push(Annotation {
            shape,
            class: self.current_class,
            name: String::new(),
        });
        let i = self.items.len() - 1;
        self.selected = Some(i);
        i
    }

    pub fn delete(&mut self, i: usize) {
        if i >= self.items.len() {
            return;
        }
        self.remember();
        self.items.remove(i);
        self.selected = match self.selected {
            Some(s) if s == i => None,
            Some(s) if s > i => Some(s - 1),
            other => other,
        };
    }

    /// The annotation's name, or its text for a text label.
    pub fn set_text(&mut self, i: usize, text: String) {
        if let Some(annotation) = self.items.get_mut(i) {
            match &mut annotation.shape {
                AnnotationShape::Text { text: t, .. } => *t = text,
                _ => annotation.name = text,
            }
        }
    }

    /// New annotations get class `i`; so does the selected one, as in QuPath (one undo step).
    pub fn choose_class(&mut self, i: usize) {
        if i >= self.classes.len() {
            return;
        }
        self.current_class = i;
        if let Some(s) = self.selected
            && self.items.get(s).is_some_and(|a| a.class != i)
        {
            self.remember();
            self.items[s].class = i;
        }
    }

    /// The class called `name`, added (with `colour`, else a palette colour) if it is new.
    pub fn class_named(&mut self, name: &str, colour: Option<Color32>) -> usize {
        if let Some(i) = self.classes.iter().position(|c| c.name == name) {
            return i;
        }
        let colour = colour.unwrap_or_else(|| crate::layers::palettes::class_colour(self.classes.len()));
        self.classes.push(AnnotationClass {
            name: name.to_owned(),
            colour: colour.to_srgba_unmultiplied(),
        });
        self.classes.len() - 1
    }

    /// The classes as a session stores them: none when they are the defaults.
    pub fn classes_to_store(&self) -> Vec<AnnotationClass> {
        if self.classes == default_classes() {
            Vec::new()
        } else {
            self.classes.clone()
        }
    }

    /// Replaces everything with a session's annotations (history starts afresh).
    pub fn restore_stored(&mut self, items: Vec<Annotation>, classes: Vec<AnnotationClass>) {
        let show_measurements = self.show_measurements;
        *self = Self {
            classes: if classes.is_empty() { default_classes() } else { classes },
            show_measurements,
            ..Default::default()
        };
        let n = self.classes.len();
        self.items = items
            .into_iter()
            .filter(|a| a.shape.is_finite())
            .map(|a| Annotation {
                class: a.class.min(n - 1),
                ..a
            })
            .collect();
    }

    /// Adds annotations read from a file (one undo step).
    pub fn import(&mut self, imported: Vec<ImportedAnnotation>) {
        if imported.is_empty() {
            return;
        }
        self.remember();
        for a in imported {
            let class = self.class_named(&a.class, a.colour);
            self.items.push(Annotation {
                shape: a.shape,
                class,
                name: a.name,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_and_redo_take_edits_back_in_order() {
        let mut a = Annotations::default();
        a.add(AnnotationShape::Point { at_um: [1.0, 2.0] });
        a.add(AnnotationShape::Point { at_um: [3.0, 4.0] });
        a.delete(0);
        assert_eq!(a.items.len(), 1);
        let last = a.history().last_undo_edit().unwrap();
        a.undo();
        assert_eq!(a.items.len(), 2);
        assert_eq!(a.history().last_redo_edit(), Some(last));
        a.undo();
        a.undo();
        assert!(a.items.is_empty());
        a.redo();
        assert_eq!(a.items.len(), 1);
        a.add(AnnotationShape::Point { at_um: [5.0, 6.0] });
        assert_eq!(a.history().last_redo_edit(), None, "a new edit drops the redo history");
    }
}
