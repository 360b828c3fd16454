//! What a Xenium feature or codeword is: a gene, a protein, or one of the controls.
//!
//! Recent `transcripts.parquet` says it per row (`codeword_category`, `is_gene`); the count
//! matrix says it per feature (`feature_type`); older runs only by name prefix
//! (`NegControlProbe_`, `NegControlCodeword_`, `BLANK_`, `UnassignedCodeword_`, ...).

/// The kind of a feature. Only genes count towards expression (CP10k, gene lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureCategory {
    /// A predesigned or custom gene.
    Gene,
    NegativeControlProbe,
    NegativeControlCodeword,
    GenomicControl,
    UnassignedCodeword,
    DeprecatedCodeword,
    Protein,
}

impl FeatureCategory {
    pub const ALL: [FeatureCategory; 7] = [
        FeatureCategory::Gene,
        FeatureCategory::NegativeControlProbe,
        FeatureCategory::NegativeControlCodeword,
        FeatureCategory::GenomicControl,
        FeatureCategory::UnassignedCodeword,
        FeatureCategory::DeprecatedCodeword,
        FeatureCategory::Protein,
    ];

    /// The snake-case name used in `info --json` (and by `codeword_category` where it exists).
    pub fn key(self) -> &'static str {
        match self {
            FeatureCategory::Gene => "gene",
            FeatureCategory::NegativeControlProbe => "negative_control_probe",
            FeatureCategory::NegativeControlCodeword => "negative_control_codeword",
            FeatureCategory::GenomicControl => "genomic_control_probe",
            FeatureCategory::UnassignedCodeword => "unassigned_codeword",
            FeatureCategory::DeprecatedCodeword => "deprecated_codeword",
            FeatureCategory::Protein => "protein",
        }
    }

    /// The inverse of [`Self::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    pub fn is_control(self) -> bool {
        !matches!(self, FeatureCategory::Gene | FeatureCategory::Protein)
    }

    /// From `codeword_category` (XOA 3.0+): `predesigned_gene`, `custom_gene`,
    /// `negative_control_probe`, `negative_control_codeword`, `genomic_control_probe`,
    /// `unassigned_codeword`, `deprecated_codeword`.
    pub fn from_codeword_category(text: &str) -> Option<Self> {
        Some(match text {
            "predesigned_gene" | "custom_gene" | "gene" => FeatureCategory::Gene,
            "negative_control_probe" => FeatureCategory::NegativeControlProbe,
            "negative_control_codeword" => FeatureCategory::NegativeControlCodeword,
            "genomic_control_probe" | "genomic_control" => FeatureCategory::GenomicControl,
            "unassigned_codeword" => FeatureCategory::UnassignedCodeword,
            "deprecated_codeword" => FeatureCategory::DeprecatedCodeword,
            "protein" => FeatureCategory::Protein,
            _ => return None,
        })
    }

    /// From the count matrix's `feature_type` (`Gene Expression`, `Negative Control Probe`, ...).
    pub fn from_feature_type(text: &str) -> Option<Self> {
        Some(match text {
            "Gene Expression" => FeatureCategory::Gene,
            "Negative Control Probe" => FeatureCategory::NegativeControlProbe,
            "Negative Control Codeword" => FeatureCategory::NegativeControlCodeword,
            "Genomic Control" | "Genomic Control Probe" => FeatureCategory::GenomicControl,
            "Unassigned Codeword" | "Blank Codeword" => FeatureCategory::UnassignedCodeword,
            "Deprecated Codeword" => FeatureCategory::DeprecatedCodeword,
            "Protein Expression" => FeatureCategory::Protein,
            _ => return None,
        })
    }

    /// By name, for runs that do not say (XOA 1.x and 2.x transcripts).
    pub fn from_feature_name(name: &str) -> Self {
        const PREFIXES: [(&str, FeatureCategory); 9] = [
            ("NegControlProbe_", FeatureCategory::NegativeControlProbe),
            ("antisense_", FeatureCategory::NegativeControlProbe),
            ("NegControlCodeword_", FeatureCategory::NegativeControlCodeword),
            ("BLANK_", FeatureCategory::UnassignedCodeword),
            ("UnassignedCodeword_", FeatureCategory::UnassignedCodeword),
            ("DeprecatedCodeword_", FeatureCategory::DeprecatedCodeword),
            ("GenomicControlProbe_", FeatureCategory::GenomicControl),
            ("GenomicControl_", FeatureCategory::GenomicControl),
            ("Intergenic_Region_", FeatureCategory::GenomicControl),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or(FeatureCategory::Gene, |(_, category)| *category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_maps_to_one_category() {
        assert_eq!(
            FeatureCategory::from_codeword_category("custom_gene"),
            Some(FeatureCategory::Gene)
        );
        assert_eq!(
            FeatureCategory::from_feature_type("Negative Control Codeword"),
            Some(FeatureCategory::NegativeControlCodeword)
        );
        assert_eq!(
            FeatureCategory::from_feature_name("NegControlProbe_00042"),
            FeatureCategory::NegativeControlProbe
        );
        assert_eq!(
            FeatureCategory::from_feature_name("BLANK_0030"),
            FeatureCategory::UnassignedCodeword
        );
        assert_eq!(FeatureCategory::from_feature_name("EPCAM"), FeatureCategory::Gene);
        for c in FeatureCategory::ALL {
            assert_eq!(FeatureCategory::from_codeword_category(c.key()), Some(c));
        }
    }
}
