//! The multi-input classifier's spatial context: each cell attends over its own tokens and one
//! token per nearest neighbouring cell, with attention biased by how far apart the tokens' cells
//! are (relative-position attention: a learned bias per head and distance bucket, per layer).
//! Owns the neighbour table, the distance buckets and the pre-norm encoder layers with that bias.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::ModelError;

/// Distance buckets of the attention bias: the same cell, then (0, 4], (4, 8], (8, 16],
/// (16, 32], (32, 64] and over 64 µm.
pub const DISTANCE_BUCKETS: usize = 7;

/// The bucket of a distance in µm between two tokens' cells.
pub fn distance_bucket(distance_um: f32) -> usize {
    if !distance_um.is_finite() || distance_um < 1e-3 {
        return 0;
    }
    let octave = (distance_um / 4.0).log2().ceil().max(0.0) as usize;
    1 + octave.min(DISTANCE_BUCKETS - 2)
}

/// Each cell's nearest other cells, `k` per row (row-major); fewer when the input has fewer cells,
/// the rest `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourTable {
    pub k: usize,
    pub rows: Vec<Option<u32>>,
}

impl NeighbourTable {
    /// The `k` nearest cells of every cell (by centroid, in µm).
    pub fn nearest(positions_um: &[[f32; 2]], k: usize) -> Result<Self, ModelError> {
        let x: Vec<f64> = positions_um.iter().map(|p| f64::from(p[0])).collect();
        let y: Vec<f64> = positions_um.iter().map(|p| f64::from(p[1])).collect();
        let graph = cs_analysis::SpatialGraph::knn(&x, &y, k.max(1))
            .map_err(|e| ModelError::Input(format!("finding each cell's neighbours: {e}")))?;
        let mut rows = Vec::with_capacity(positions_um.len() * k);
        for cell in 0..positions_um.len() {
            let found = graph.neighbors(cell);
            rows.extend((0..k).map(|j| found.get(j).copied()));
        }
        Ok(Self { k, rows })
    }

    pub fn of(&self, cell: usize) -> &[Option<u32>] {
        &self.rows[cell * self.k..(cell + 1) * self.k]
    }
}

/// One batch's context: which tokens are real and the distance bucket of every token pair.
pub struct AttentionContext {
    /// [batch, heads-broadcast 1, 1, tokens]: 0 for real keys, a large negative for padding.
    pub key_padding: Tensor<4>,
    /// [batch, tokens]: 1 for real tokens, 0 for padding (for the mean pool).
    pub valid: Tensor<2>,
    /// [batch, tokens × tokens]: the distance bucket between the tokens' cells.
    pub buckets: Tensor<2, Int>,
    pub tokens: usize,
}

impl AttentionContext {
    /// `own_tokens` tokens at each cell's own centre followed by one token per neighbour slot;
    /// `offsets_um[b][j]` is neighbour `j`'s offset from cell `b`, `None` for an empty slot.
    pub fn new(own_tokens: usize, offsets_um: &[Vec<Option<[f32; 2]>>], device: &Device) -> Self {
        let batch = offsets_um.len();
        let k = offsets_um.first().map_or(0, Vec::len);
        let tokens = own_tokens + k;
        let mut padding = Vec::with_capacity(batch * tokens);
        let mut valid = Vec::with_capacity(batch * tokens);
        let mut buckets = Vec::with_capacity(batch * tokens * tokens);
        for offsets in offsets_um {
            let position = |t: usize| -> Option<[f32; 2]> {
                if t < own_tokens {
                    Some([0.0, 0.0])
                } else {
                    offsets[t - own_tokens]
                }
            };
            for t in 0..tokens {
                let real = position(t).is_some();
                padding.push(if real { 0.0 } else { -1.0e4 });
                valid.push(if real { 1.0 } else { 0.0 });
            }
            for a in 0..tokens {
                for b in 0..tokens {
                    let bucket = match (position(a), position(b)) {
                        (Some(p), Some(q)) => distance_bucket((p[0] - q[0]).hypot(p[1] - q[1])),
                        _ => 0,
                    };
                    buckets.push(bucket as i64);
                }
            }
        }
        Self {
            key_padding: Tensor::from_data(TensorData::new(padding, [batch, 1, 1, tokens]), device),
            valid: Tensor::from_data(TensorData::new(valid, [batch, tokens]), device),
            buckets: Tensor::from_data(TensorData::new(buckets, [batch, tokens * tokens]), device),
            tokens,
        }
    }

    /// The mean of each row's real tokens: [batch, tokens, d] -> [batch, d].
    pub fn mean_pool(&self, x: Tensor<3>) -> Tensor<2> {
        let [batch, tokens, _] = x.dims();
        let weights = self.valid.clone().reshape([batch, tokens, 1]);
        let count = self.valid.clone().sum_dim(1); // [batch, 1]
        (x * weights).sum_dim(1).squeeze_dim::<2>(1) / count
    }
}

/// A pre-norm transformer encoder whose attention scores get a learned bias per head and
/// distance bucket.
#[derive(Module, Debug)]
pub struct RelativeEncoder {
    layers: Vec<RelativeEncoderLayer>,
}

#[derive(Module, Debug)]
struct RelativeEncoderLayer {
    norm_attention: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    /// [bucket] -> one bias per head.
    distance_bias: Embedding,
    norm_feed_forward: LayerNorm,
    feed_forward_in: Linear,
    feed_forward_out: Linear,
    dropout: Dropout,
    #[module(skip)]
    n_heads: usize,
}

impl RelativeEncoder {
    pub fn new(d_model: usize, d_ff: usize, n_heads: usize, n_layers: usize, dropout: f64, device: &Device) -> Self {
        let layers = (0..n_layers)
            .map(|_| RelativeEncoderLayer {
                norm_attention: LayerNormConfig::new(d_model).init(device),
                query: LinearConfig::new(d_model, d_model).init(device),
                key: LinearConfig::new(d_model, d_model).init(device),
                value: LinearConfig::new(d_model, d_model).init(device),
                output: LinearConfig::new(d_model, d_model).init(device),
                distance_bias: EmbeddingConfig::new(DISTANCE_BUCKETS, n_heads).init(device),
                norm_feed_forward: LayerNormConfig::new(d_model).init(device),
                feed_forward_in: LinearConfig::new(d_model, d_ff).init(device),
                feed_forward_out: LinearConfig::new(d_ff, d_model).init(device),
                dropout: DropoutConfig::new(dropout).init(),
                n_heads,
            })
            .collect();
        Self { layers }
    }

    /// tokens [batch, tokens, d] -> [batch, tokens, d].
    pub fn forward(&self, mut x: Tensor<3>, context: &AttentionContext) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward(x, context);
        }
        x
    }
}

impl RelativeEncoderLayer {
    fn forward(&self, x: Tensor<3>, context: &AttentionContext) -> Tensor<3> {
        let [batch, tokens, d] = x.dims();
        let heads = self.n_heads;
        let head_dim = d / heads;
        let h = self.norm_attention.forward(x.clone());
        let split = |t: Tensor<3>| t.reshape([batch, tokens, heads, head_dim]).swap_dims(1, 2);
        let q = split(self.query.forward(h.clone())) / (head_dim as f64).sqrt();
        let k = split(self.key.forward(h.clone()));
        let v = split(self.value.forward(h));
        // [batch, tokens², heads] -> [batch, heads, tokens, tokens]
        let bias = self
            .distance_bias
            .forward(context.buckets.clone())
            .reshape([batch, tokens, tokens, heads])
            .permute([0, 3, 1, 2]);
        let scores = q.matmul(k.swap_dims(2, 3)) + bias + context.key_padding.clone();
        let attention = softmax(scores, 3);
        let o = attention.matmul(v).swap_dims(1, 2).reshape([batch, tokens, d]);
        let x = x + self.dropout.forward(self.output.forward(o));
        let h = self.norm_feed_forward.forward(x.clone());
        let h = self
            .feed_forward_out
            .forward(self.dropout.forward(gelu(self.feed_forward_in.forward(h))));
        x + self.dropout.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_device;

    #[test]
    fn distances_fall_into_doubling_buckets() {
        let buckets: Vec<usize> = [0.0, 3.0, 4.0, 5.0, 8.0, 12.0, 30.0, 60.0, 65.0, 1e6, f32::NAN]
            .iter()
            .map(|&d| distance_bucket(d))
            .collect();
        assert_eq!(buckets, [0, 1, 1, 2, 2, 3, 4, 5, 6, 6, 0]);
    }

    #[test]
    fn neighbours_are_the_nearest_cells_and_short_inputs_pad() {
        let positions = [[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [30.0, 0.0]];
        let table = NeighbourTable::nearest(&positions, 2).unwrap();
        assert_eq!(table.of(0), [Some(1), Some(2)]);
        assert_eq!(table.of(3), [Some(1), Some(2)]);
        let table = NeighbourTable::nearest(&positions[..2], 3).unwrap();
        assert_eq!(table.of(0), [Some(1), None, None]);
    }

    #[test]
    fn padding_is_ignored_and_the_bias_depends_on_distance() {
        let device = cpu_device();
        let encoder = RelativeEncoder::new(8, 16, 2, 2, 0.0, &device);
        let x = Tensor::<3>::from_data(
            TensorData::new((0..2 * 3 * 8).map(|v| (v as f32 * 0.37).sin()).collect(), [2, 3, 8]),
            &device,
        );
        // Row 0: one own token + two neighbours; row 1: the second neighbour slot is empty.
        let near = AttentionContext::new(
            1,
            &[vec![Some([3.0, 0.0]), None], vec![Some([3.0, 0.0]), None]],
            &device,
        );
        let out = encoder.forward(x.clone(), &near);
        assert_eq!(out.dims(), [2, 3, 8]);
        // The empty slot's contents do not change the real tokens' outputs.
        let mut changed: Vec<f32> = x.clone().into_data().try_to_vec().unwrap();
        for v in &mut changed[16..24] {
            *v += 5.0;
        }
        let changed = Tensor::<3>::from_data(TensorData::new(changed, [2, 3, 8]), &device);
        let out_changed = encoder.forward(changed, &near);
        let real = |t: Tensor<3>| -> Vec<f32> { t.narrow(0, 0, 1).narrow(1, 0, 2).into_data().try_to_vec().unwrap() };
        let (a, b) = (real(out.clone()), real(out_changed));
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5));
        // Moving the neighbour to another distance bucket changes the output.
        let far = AttentionContext::new(
            1,
            &[vec![Some([50.0, 0.0]), None], vec![Some([3.0, 0.0]), None]],
            &device,
        );
        let c = real(encoder.forward(x, &far));
        assert!(a.iter().zip(&c).any(|(p, q)| (p - q).abs() > 1e-4));
        let pooled = near.mean_pool(out);
        assert_eq!(pooled.dims(), [2, 8]);
    }
}
