//! Coarser pyramid levels built band by band, for the H&E (RGB, 8-bit) and the morphology stains
//! (grey, 16-bit): each finished row of tiles of a level is 2x2-averaged into the row of the next
//! level, and a coarser row is handed back (and folded further down) once both finer rows that
//! make it are in, so memory stays one row of tiles per level however large the image.

use rayon::prelude::*;

use crate::slide::TILE_PX;

/// A sample type that can be averaged four at a time (rounded to nearest).
pub(crate) trait Sample: Copy + Send + Sync {
    fn average4(a: Self, b: Self, c: Self, d: Self) -> Self;
}

impl Sample for u8 {
    fn average4(a: u8, b: u8, c: u8, d: u8) -> u8 {
        ((u32::from(a) + u32::from(b) + u32::from(c) + u32::from(d) + 2) / 4) as u8
    }
}

impl Sample for u16 {
    fn average4(a: u16, b: u16, c: u16, d: u16) -> u16 {
        ((u32::from(a) + u32::from(b) + u32::from(c) + u32::from(d) + 2) / 4) as u16
    }
}

/// 2x2 average of a tile (`channels` interleaved samples a pixel) into a quarter-size block.
fn downsample<T: Sample>(tile: &[T], channels: usize) -> Vec<T> {
    let t = TILE_PX as usize;
    let half = t / 2;
    let mut out = Vec::with_capacity(half * half * channels);
    for y in 0..half {
        for x in 0..half {
            for c in 0..channels {
                let at = |xx: usize, yy: usize| tile[(yy * t + xx) * channels + c];
                out.push(T::average4(
                    at(2 * x, 2 * y),
                    at(2 * x + 1, 2 * y),
                    at(2 * x, 2 * y + 1),
                    at(2 * x + 1, 2 * y + 1),
                ));
            }
        }
    }
    out
}

/// The rows of tiles under construction, one per level (level 0's is unused).
pub(crate) struct BandPyramid<T> {
    levels: Vec<(u64, u64)>,
    pending: Vec<Vec<Vec<T>>>,
    channels: usize,
    /// What tiles beyond the image hold (glass white, or no signal).
    pad: T,
}

impl<T: Sample> BandPyramid<T> {
    pub fn new(levels: &[(u64, u64)], channels: usize, pad: T) -> Self {
        let mut pyramid = Self {
            levels: levels.to_vec(),
            pending: Vec::new(),
            channels,
            pad,
        };
        pyramid.pending = (0..levels.len()).map(|l| pyramid.blank_row(l)).collect();
        pyramid
    }

    fn blank_row(&self, level: usize) -> Vec<Vec<T>> {
        let across = self.levels[level].0.div_ceil(u64::from(TILE_PX)) as usize;
        vec![vec![self.pad; (TILE_PX * TILE_PX) as usize * self.channels]; across]
    }

    /// Takes finished row `row` of `level` and returns each coarser row it completes, coarsest
    /// last, as (level, row, tiles): the caller encodes and writes them.
    pub fn push(&mut self, mut level: usize, mut row: u64, tiles: &[Vec<T>]) -> Vec<(usize, u64, Vec<Vec<T>>)> {
        let mut completed = Vec::new();
        let mut finished: Option<Vec<Vec<T>>> = None;
        loop {
            let next = level + 1;
            if next >= self.levels.len() {
                return completed;
            }
            let down = self.levels[level].1.div_ceil(u64::from(TILE_PX));
            let source = finished.as_deref().unwrap_or(tiles);
            let channels = self.channels;
            let halves: Vec<Vec<T>> = source.par_iter().map(|t| downsample(t, channels)).collect();
            let half = (TILE_PX / 2) as usize;
            let t = TILE_PX as usize;
            let target = &mut self.pending[next];
            for (col, block) in halves.iter().enumerate() {
                let Some(tile) = target.get_mut(col / 2) else { continue };
                let ox = (col % 2) * half;
                let oy = (row as usize % 2) * half;
                for y in 0..half {
                    let dst = ((oy + y) * t + ox) * channels;
                    tile[dst..dst + half * channels]
                        .copy_from_slice(&block[y * half * channels..(y + 1) * half * channels]);
                }
            }
            if row.is_multiple_of(2) && row + 1 < down {
                return completed;
            }
            let blank = self.blank_row(next);
            let row_done = std::mem::replace(&mut self.pending[next], blank);
            level = next;
            row /= 2;
            completed.push((level, row, row_done.clone()));
            finished = Some(row_done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_blocks() {
        let mut tile = vec![0u8; (TILE_PX * TILE_PX * 3) as usize];
        for (i, v) in tile.iter_mut().enumerate() {
            *v = ((i / 3) % 2 * 100) as u8;
        }
        assert!(downsample(&tile, 3).iter().all(|&v| v == 50));
        let grey = vec![1001u16; (TILE_PX * TILE_PX) as usize];
        assert!(downsample(&grey, 1).iter().all(|&v| v == 1001));
    }

    #[test]
    fn coarser_rows_complete_when_both_finer_rows_are_in() {
        let t = u64::from(TILE_PX);
        // Level 0: 3 rows of 2 tiles; level 1: 2 rows of 1 tile; level 2: 1 row of 1 tile.
        let levels = [(2 * t, 3 * t), (t, 3 * t / 2), (t / 2, 3 * t / 4)];
        let mut pyramid = BandPyramid::new(&levels, 1, 0u16);
        let row = |v: u16| vec![vec![v; (TILE_PX * TILE_PX) as usize]; 2];
        assert!(
            pyramid.push(0, 0, &row(100)).is_empty(),
            "level 1 row 0 waits for level 0 row 1"
        );
        let done = pyramid.push(0, 1, &row(300));
        assert_eq!(done.iter().map(|(l, r, _)| (*l, *r)).collect::<Vec<_>>(), [(1, 0)]);
        // Row 0 fills the top half of the coarser tile, row 1 the bottom half.
        let last = (TILE_PX * TILE_PX) as usize - 1;
        assert_eq!((done[0].2[0][0], done[0].2[0][last]), (100, 300));
        // The last (odd) row completes level 1 row 1, and with it level 2 row 0.
        let done = pyramid.push(0, 2, &row(500));
        assert_eq!(
            done.iter().map(|(l, r, _)| (*l, *r)).collect::<Vec<_>>(),
            [(1, 1), (2, 0)]
        );
        // Level 1 row 1's lower half is padding (0): its top half holds 500.
        assert_eq!(done[0].2[0][0], 500);
        assert_eq!(done[0].2[0][last], 0);
    }
}
