//! [`TileStore`]: what an image layer keeps of its tiles, whatever they hold (RGBA slide tiles,
//! 16-bit channel tiles): the loader's threads, the RAM cache of decoded tiles, the tiles that
//! failed (neither fetched nor drawn again), and the wanted list last handed to the loader.

use std::collections::HashMap;
use std::sync::Arc;

use cs_slide::{ByteLru, Gray16Image, LoaderKey, RgbaImage, SlideError, TileLoader};

/// A decoded tile's size in memory.
pub trait TileBytes {
    fn size_bytes(&self) -> usize;
}

impl TileBytes for RgbaImage {
    fn size_bytes(&self) -> usize {
        RgbaImage::size_bytes(self)
    }
}

impl TileBytes for Gray16Image {
    fn size_bytes(&self) -> usize {
        Gray16Image::size_bytes(self)
    }
}

pub struct TileStore<K: LoaderKey, T: TileBytes + Send + Sync + 'static> {
    loader: TileLoader<K, T>,
    ram_cache: ByteLru<K, Arc<T>>,
    failed: HashMap<K, SlideError>,
    last_fetch: Vec<K>,
}

impl<K: LoaderKey, T: TileBytes + Send + Sync + 'static> TileStore<K, T> {
    pub fn new(loader: TileLoader<K, T>, ram_budget_bytes: usize) -> Self {
        Self {
            loader,
            ram_cache: ByteLru::new(ram_budget_bytes),
            failed: HashMap::new(),
            last_fetch: Vec::new(),
        }
    }

    pub fn set_ram_budget(&mut self, bytes: usize) {
        self.ram_cache.set_budget(bytes);
    }

    pub fn ram_budget_bytes(&self) -> usize {
        self.ram_cache.budget_bytes()
    }

    /// Moves finished tiles from the loader into the RAM cache (failures into the failed set).
    /// Returns how many arrived.
    pub fn receive(&mut self) -> usize {
        let arrived = self.loader.drain();
        let count = arrived.len();
        for tile in arrived {
            match tile.result {
                Ok(image) => {
                    let bytes = image.size_bytes();
                    self.ram_cache.insert(tile.key, image, bytes);
                }
                Err(error) => {
                    log::warn!("{error}");
                    self.failed.insert(tile.key, error);
                }
            }
        }
        count
    }

    /// Hands the loader the tiles to read, most urgent first, when the list changed.
    pub fn want(&mut self, fetch: Vec<K>) {
        if fetch != self.last_fetch {
            self.loader.set_wanted(&fetch);
            self.last_fetch = fetch;
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loader.busy_count() > 0
    }

    pub fn is_ready(&self, key: &K) -> bool {
        self.ram_cache.contains(key)
    }

    pub fn has_failed(&self, key: &K) -> bool {
        self.failed.contains_key(key)
    }

    /// A loaded tile, marked as just used.
    pub fn get(&mut self, key: &K) -> Option<Arc<T>> {
        self.ram_cache.get(key).cloned()
    }

    /// A loaded tile, without touching its place in the cache.
    pub fn peek(&self, key: &K) -> Option<&Arc<T>> {
        self.ram_cache.peek(key)
    }

    pub fn failed_count(&self) -> usize {
        self.failed.len()
    }

    /// One representative tile error, for the status line.
    pub fn first_error(&self) -> Option<&SlideError> {
        self.failed.values().next()
    }
}
