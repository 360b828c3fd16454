//! How numbers are written for people: lengths and areas in the units the user prefers (passed
//! in, never read from a global), scale-bar lengths, and significance stars.

use serde::{Deserialize, Serialize};

/// How lengths and areas are written (a preference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LengthUnits {
    /// µm, and mm from 1 mm up (mm² from 0.01 mm²).
    #[default]
    Automatic,
    /// Always µm (and µm²).
    Micrometres,
}

impl LengthUnits {
    fn allows_mm(self) -> bool {
        self == LengthUnits::Automatic
    }
}

/// A length measured by the user: µm below 1 mm, mm above (unless always µm).
pub fn format_length(length_um: f64, units: LengthUnits) -> String {
    if length_um >= 1000.0 && units.allows_mm() {
        format!("{:.3} mm", length_um / 1000.0)
    } else {
        format!("{length_um:.1} µm")
    }
}

/// An area: µm² below 0.01 mm², mm² above (unless always µm).
pub fn format_area(area_um2: f64, units: LengthUnits) -> String {
    if area_um2 >= 1e4 && units.allows_mm() {
        format!("{:.4} mm²", area_um2 / 1e6)
    } else {
        format!("{area_um2:.0} µm²")
    }
}

/// A round scale-bar length without trailing zeros: nm below 1 µm, mm from 1 mm (unless always µm).
pub fn format_scale_length(length_um: f64, units: LengthUnits) -> String {
    if length_um >= 1000.0 && units.allows_mm() {
        format!("{} mm", trim_number(length_um / 1000.0))
    } else if length_um >= 1.0 {
        format!("{} µm", trim_number(length_um))
    } else {
        format!("{} nm", trim_number(length_um * 1000.0))
    }
}

fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Significance marks for a q-value: `***` below 0.001, `**` below 0.01, `*` below 0.05.
pub fn significance_stars(q: f64) -> &'static str {
    if q < 0.001 {
        "***"
    } else if q < 0.01 {
        "**"
    } else if q < 0.05 {
        "*"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_areas_follow_the_units_passed_in() {
        let auto = LengthUnits::Automatic;
        let um = LengthUnits::Micrometres;
        assert_eq!(format_length(999.94, auto), "999.9 µm");
        assert_eq!(format_length(1500.0, auto), "1.500 mm");
        assert_eq!(format_length(1500.0, um), "1500.0 µm");
        assert_eq!(format_area(9999.0, auto), "9999 µm²");
        assert_eq!(format_area(25_000.0, auto), "0.0250 mm²");
        assert_eq!(format_area(25_000.0, um), "25000 µm²");
        assert_eq!(format_scale_length(500.0, auto), "500 µm");
        assert_eq!(format_scale_length(2000.0, auto), "2 mm");
        assert_eq!(format_scale_length(2000.0, um), "2000 µm");
        assert_eq!(format_scale_length(0.5, auto), "500 nm");
        assert_eq!(format_scale_length(2.5, auto), "2.5 µm");
    }

    #[test]
    fn stars_mark_q_values() {
        assert_eq!(significance_stars(0.0005), "***");
        assert_eq!(significance_stars(0.005), "**");
        assert_eq!(significance_stars(0.03), "*");
        assert_eq!(significance_stars(0.2), "");
    }

    #[test]
    fn units_read_back_under_their_old_names() {
        assert_eq!(
            serde_json::from_str::<LengthUnits>("\"Micrometres\"").unwrap(),
            LengthUnits::Micrometres
        );
    }
}
