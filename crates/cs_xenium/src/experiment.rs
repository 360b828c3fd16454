//! `experiment.xenium`: run metadata, above all `pixel_size` (micrometres per morphology pixel).

use std::path::Path;

use crate::error::{XeniumError, io_error};

/// Xenium's morphology pixel size, used when a bundle has no experiment.xenium.
pub const DEFAULT_PIXEL_SIZE_UM: f64 = 0.2125;

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub pixel_size_um: f64,
    /// `analysis_sw_version` as written (`xenium-2.0.0.10`, `Xenium-1.0.1`, or `R&D`).
    pub software_version: Option<String>,
    /// `xenium_ranger.version` when Xenium Ranger re-ran the analysis; it takes precedence.
    pub ranger_version: Option<String>,
    pub panel_name: Option<String>,
    pub panel_organism: Option<String>,
    pub run_name: Option<String>,
    pub region_name: Option<String>,
    /// Cell count of the full run as recorded (a crop holds fewer).
    pub num_cells: Option<u64>,
}

impl Experiment {
    /// The version of the analysis that wrote the files: Xenium Ranger's when it re-ran the
    /// analysis, else the onboard analysis's.
    pub fn analysis_version(&self) -> Option<&str> {
        self.ranger_version.as_deref().or(self.software_version.as_deref())
    }

    /// `analysis_version` as (major, minor, patch) when it reads `xenium-X.Y.Z…` (None for
    /// development builds such as `R&D`).
    pub fn xoa_version(&self) -> Option<[u32; 3]> {
        parse_xoa_version(self.analysis_version()?)
    }

    pub fn read(path: &Path) -> Result<Self, XeniumError> {
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| XeniumError::Corrupt {
            file: path.to_path_buf(),
            format: "JSON",
            reason: e.to_string(),
        })?;
        let text_field = |key: &str| {
            json.get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let pixel_size_um = match json.get("pixel_size") {
            None => {
                return Err(XeniumError::MissingColumn {
                    file: path.to_path_buf(),
                    column: "pixel_size".to_owned(),
                    found: json
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                });
            }
            Some(value) => match value.as_f64() {
                Some(v) if v.is_finite() && v > 0.0 => v,
                _ => {
                    return Err(XeniumError::WrongType {
                        file: path.to_path_buf(),
                        column: "pixel_size".to_owned(),
                        expected: "a positive number",
                        found: value.to_string(),
                    });
                }
            },
        };
        Ok(Self {
            pixel_size_um,
            software_version: text_field("analysis_sw_version"),
            ranger_version: json
                .get("xenium_ranger")
                .and_then(|r| r.get("version"))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            panel_name: text_field("panel_name"),
            panel_organism: text_field("panel_organism"),
            run_name: text_field("run_name"),
            region_name: text_field("region_name"),
            num_cells: json.get("num_cells").and_then(|v| v.as_u64()),
        })
    }
}

/// `xenium-2.0.0.10` or `Xenium-1.0.1` to `[2, 0, 0]` / `[1, 0, 1]`.
pub fn parse_xoa_version(text: &str) -> Option<[u32; 3]> {
    let rest = text.strip_prefix("xenium-").or_else(|| text.strip_prefix("Xenium-"))?;
    let mut parts = rest.split(['.', '-']);
    let mut next = || parts.next()?.parse::<u32>().ok();
    Some([next()?, next()?, next()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_every_spelling() {
        assert_eq!(parse_xoa_version("Xenium-1.0.1"), Some([1, 0, 1]));
        assert_eq!(parse_xoa_version("xenium-2.0.0.6-35-ga7e17149a"), Some([2, 0, 0]));
        assert_eq!(parse_xoa_version("xenium-4.0.1.0"), Some([4, 0, 1]));
        assert_eq!(parse_xoa_version("R&D"), None);
        assert_eq!(parse_xoa_version("Development"), None);
    }
}
