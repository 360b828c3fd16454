//! Colour palettes from `assets/palettes/`: the categorical class colours, the 256-entry colour
//! maps for numeric values, and the diverging blue-white-red scale of z-scores.

use std::sync::OnceLock;

use egui::Color32;

const CATEGORICAL: &str = include_str!("../../assets/palettes/categorical.txt");
const VIRIDIS: &str = include_str!("../../assets/palettes/viridis.txt");
const MAGMA: &str = include_str!("../../assets/palettes/magma.txt");

/// Colour for missing values (no class, NaN).
pub const MISSING_COLOUR: Color32 = Color32::from_rgb(150, 150, 150);
/// The class low-confidence predictions are put in, drawn light grey whatever its position.
pub const UNCERTAIN_CLASS: &str = "uncertain";
pub const UNCERTAIN_COLOUR: Color32 = Color32::from_rgb(205, 205, 205);

/// The colour of class `index` named `name`: the palette's, except for [`UNCERTAIN_CLASS`].
pub fn named_class_colour(index: usize, name: &str) -> Color32 {
    if name == UNCERTAIN_CLASS {
        UNCERTAIN_COLOUR
    } else {
        class_colour(index)
    }
}

/// Parses `#rrggbb` lines; lines starting with `# ` and blank lines are comments.
fn parse_hex_lines(text: &str) -> Vec<Color32> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.len() == 7 && l.starts_with('#'))
        .filter_map(|l| {
            let v = u32::from_str_radix(&l[1..], 16).ok()?;
            Some(Color32::from_rgb((v >> 16) as u8, (v >> 8) as u8, v as u8))
        })
        .collect()
}

/// The default colour of class `index` (the palette cycles).
pub fn class_colour(index: usize) -> Color32 {
    static COLOURS: OnceLock<Vec<Color32>> = OnceLock::new();
    let colours = COLOURS.get_or_init(|| parse_hex_lines(CATEGORICAL));
    colours
        .get(index % colours.len().max(1))
        .copied()
        .unwrap_or(MISSING_COLOUR)
}

/// A colour map for numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ColourMap {
    Viridis,
    Magma,
}

impl ColourMap {
    pub const ALL: [ColourMap; 2] = [ColourMap::Viridis, ColourMap::Magma];

    pub fn name(self) -> &'static str {
        match self {
            ColourMap::Viridis => "viridis",
            ColourMap::Magma => "magma",
        }
    }

    /// The colour a fraction `t` (0–1) of the way up the map.
    pub fn colour(self, t: f64) -> Color32 {
        let colours = self.colours();
        let last = colours.len().saturating_sub(1);
        let i = (t.clamp(0.0, 1.0) * last as f64).round() as usize;
        colours.get(i).copied().unwrap_or(Color32::GRAY)
    }

    /// The 256 colours, low to high (parsed once).
    pub fn colours(self) -> &'static [Color32] {
        static VIRIDIS_COLOURS: OnceLock<Vec<Color32>> = OnceLock::new();
        static MAGMA_COLOURS: OnceLock<Vec<Color32>> = OnceLock::new();
        match self {
            ColourMap::Viridis => VIRIDIS_COLOURS.get_or_init(|| parse_hex_lines(VIRIDIS)),
            ColourMap::Magma => MAGMA_COLOURS.get_or_init(|| parse_hex_lines(MAGMA)),
        }
    }
}

/// Diverging colour for a z-score: blue (depleted) through white to red (enriched), saturating
/// at |z| = 10; grey for NaN.
pub fn zscore_colour(z: f64) -> Color32 {
    if !z.is_finite() {
        return Color32::from_gray(120);
    }
    let t = (z / 10.0).clamp(-1.0, 1.0) as f32;
    let lerp = |a: f32, b: f32, t: f32| (a + (b - a) * t).round() as u8;
    if t >= 0.0 {
        Color32::from_rgb(255, lerp(255.0, 40.0, t), lerp(255.0, 40.0, t))
    } else {
        Color32::from_rgb(lerp(255.0, 40.0, -t), lerp(255.0, 90.0, -t), 255)
    }
}

/// sRGB-encoded RGBA in 0..1, as the cell renderer's palette wants.
pub fn to_rgba_f32(c: Color32) -> [f32; 4] {
    let [r, g, b, a] = c.to_srgba_unmultiplied();
    [
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
        f32::from(a) / 255.0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palettes_load_from_assets() {
        assert_eq!(ColourMap::Viridis.colours().len(), 256);
        assert_eq!(ColourMap::Magma.colours().len(), 256);
        assert_eq!(ColourMap::Viridis.colours()[0], Color32::from_rgb(0x44, 0x01, 0x54));
        assert_eq!(class_colour(0), Color32::from_rgb(0x1f, 0x77, 0xb4));
        assert_eq!(class_colour(24), class_colour(0), "the palette cycles");
        assert_ne!(class_colour(1), class_colour(0));
    }
}
