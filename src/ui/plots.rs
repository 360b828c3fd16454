//! Plot widgets the panels share: a labelled matrix of coloured cells with hover text (confusion
//! matrices, cluster x cell-type enrichment, neighbourhood z-scores).

use egui::Color32;

/// How a matrix is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatrixLayout {
    /// Abbreviated column names above the cells (else the rows' names say it all).
    pub column_header: bool,
    /// The largest side of a cell, in points.
    pub max_side: f32,
}

/// A labelled matrix of coloured cells with hover text. Returns where it was drawn.
pub fn matrix_ui(
    ui: &mut egui::Ui,
    row_names: &[String],
    col_names: &[String],
    values: &[Vec<f64>],
    colour: impl Fn(f64) -> Color32,
    hover: impl Fn(usize, usize) -> String,
    layout: MatrixLayout,
) -> egui::Rect {
    let (rows, cols) = (row_names.len(), col_names.len());
    if rows == 0 || cols == 0 {
        return egui::Rect::NOTHING;
    }
    let label_width = 90.0;
    let header = if layout.column_header { 14.0 } else { 0.0 };
    let side = ((ui.available_width() - label_width) / cols as f32).clamp(10.0, layout.max_side);
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(label_width + side * cols as f32, header + side * rows as f32 + 2.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    let text_colour = ui.visuals().text_color();
    for (c, name) in col_names.iter().enumerate().filter(|_| layout.column_header) {
        let short: String = name.chars().take((side / 6.0).max(2.0) as usize).collect();
        painter.text(
            egui::pos2(
                rect.left() + label_width + (c as f32 + 0.5) * side,
                rect.top() + header / 2.0,
            ),
            egui::Align2::CENTER_CENTER,
            short,
            egui::FontId::proportional(9.0),
            text_colour,
        );
    }
    for (r, name) in row_names.iter().enumerate() {
        let y = rect.top() + header + r as f32 * side;
        painter.text(
            egui::pos2(rect.left() + label_width - 4.0, y + side / 2.0),
            egui::Align2::RIGHT_CENTER,
            name,
            egui::FontId::proportional(11.0),
            text_colour,
        );
        for c in 0..cols {
            let cell = egui::Rect::from_min_size(
                egui::pos2(rect.left() + label_width + c as f32 * side, y),
                egui::vec2(side - 1.0, side - 1.0),
            );
            let v = values.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0.0);
            painter.rect_filled(cell, 1.0, colour(v));
        }
    }
    if let Some(pos) = response.hover_pos() {
        let c = ((pos.x - rect.left() - label_width) / side).floor();
        let r = ((pos.y - rect.top() - header) / side).floor();
        if c >= 0.0 && r >= 0.0 && (c as usize) < cols && (r as usize) < rows {
            response.on_hover_text(hover(r as usize, c as usize));
        }
    }
    rect
}
