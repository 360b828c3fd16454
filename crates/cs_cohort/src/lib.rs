//! Cohorts of samples: the manifest that lists them ([`manifest`]), which samples a shard of a
//! run takes ([`Shard`]), the fingerprint of a step's inputs that lets a killed run resume
//! ([`fingerprint`]), and the across-sample summary with tests between groups ([`summary`]).
//! No UI and no model code: the app and the command line run the steps.

pub mod fingerprint;
pub mod manifest;
pub mod summary;

pub use fingerprint::{Fingerprint, fingerprint_paths};
pub use manifest::{Manifest, ManifestError, Sample};
pub use summary::{GroupTest, Measure, SummaryRow, group_tests, share_rows};

/// Every `count`-th sample starting at `index` (0-based): `--shard 0/4` .. `--shard 3/4` split a
/// cohort four ways, as a Slurm array's task ids would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether the sample at `position` (in manifest order) is this shard's.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with 0 <= I < N.
    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("shard {text:?}: expected I/N, e.g. 0/4"))?;
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| format!("shard {text:?}: {index:?} is not a number"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("shard {text:?}: {count:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {text:?}: I must be below N (shards are 0/N .. {}/N)",
                count.max(1) - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_cohort_without_overlap() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for position in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(position)).count(), 1);
        }
        assert!(shards[1].takes(4) && !shards[1].takes(5));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("a/2".parse::<Shard>().is_err());
        assert!(Shard::ALL.takes(7));
    }
}
