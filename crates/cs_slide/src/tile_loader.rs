//! [`TileLoader`]: named worker threads that read tiles off the UI thread.
//!
//! Generic over the key (a [`TileKey`], or a channel's tile) and the decoded tile (RGBA for a
//! slide, 16-bit grey for a fluorescence channel); [`TileLoader::new`] reads RGBA slide tiles.
//!
//! The UI states, once per frame, the whole list of tiles it wants, most urgent first
//! ([`TileLoader::set_wanted`]). That list replaces the previous one, so tiles that left the view are
//! dropped and newer requests win. Results come back through a bounded channel that the UI drains
//! once per frame; `notify` (e.g. `egui::Context::request_repaint`) is called after each result,
//! with no lock held.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::SlideError;
use crate::pyramid::{TileKey, TilePyramid};
use crate::source::{RgbaImage, SlideSource};

/// How many finished tiles may wait for the UI before workers pause.
const RESULT_QUEUE_CAPACITY: usize = 64;

/// A finished read.
#[derive(Debug, Clone)]
pub struct LoadedTile<K = TileKey, T = RgbaImage> {
    pub key: K,
    pub result: Result<Arc<T>, SlideError>,
}

/// What a key of a loader must be.
pub trait LoaderKey: Copy + Eq + Hash + Send + 'static {}
impl<K: Copy + Eq + Hash + Send + 'static> LoaderKey for K {}

/// Reads one tile on a worker thread.
pub type TileReader<K, T> = Arc<dyn Fn(K) -> Result<T, SlideError> + Send + Sync>;

struct Queue<K> {
    pending: VecDeque<K>,
    in_flight: HashSet<K>,
    shutdown: bool,
}

struct Shared<K> {
    queue: Mutex<Queue<K>>,
    wake: Condvar,
}

impl<K> Shared<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<K>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct TileLoader<K: LoaderKey = TileKey, T: Send + Sync + 'static = RgbaImage> {
    shared: Arc<Shared<K>>,
    results: Option<Receiver<LoadedTile<K, T>>>,
    workers: Vec<JoinHandle<()>>,
}

impl TileLoader {
    /// Starts `threads` workers named `tile-loader-N` reading RGBA tiles of `source`.
    pub fn new(
        source: Arc<dyn SlideSource>,
        pyramid: TilePyramid,
        threads: usize,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let read: TileReader<TileKey, RgbaImage> = Arc::new(move |key| {
            let (pos_in_slide_px, level, width, height) = pyramid.read_args(key);
            source.read_region(pos_in_slide_px, level, width, height)
        });
        Self::with_reader(read, "tile-loader", threads, notify)
    }
}

impl<K: LoaderKey, T: Send + Sync + 'static> TileLoader<K, T> {
    /// Starts `threads` workers named `{name}-N` that read with `read`.
    pub fn with_reader(
        read: TileReader<K, T>,
        name: &str,
        threads: usize,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                in_flight: HashSet::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let (sender, receiver) = std::sync::mpsc::sync_channel(RESULT_QUEUE_CAPACITY);
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let worker = Worker {
                shared: shared.clone(),
                read: read.clone(),
                sender: sender.clone(),
                notify: notify.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker.run())?;
            workers.push(handle);
        }
        Ok(Self {
            shared,
            results: Some(receiver),
            workers,
        })
    }

    /// Replaces the queue with `keys` (most urgent first), skipping tiles already being read.
    pub fn set_wanted(&self, keys: &[K]) {
        let mut queue = self.shared.lock();
        let queue = &mut *queue;
        queue.pending.clear();
        let mut seen = HashSet::with_capacity(keys.len());
        for key in keys {
            if !queue.in_flight.contains(key) && seen.insert(*key) {
                queue.pending.push_back(*key);
            }
        }
        drop(seen);
        self.shared.wake.notify_all();
    }

    /// Finished tiles since the last call; never blocks.
    pub fn drain(&self) -> Vec<LoadedTile<K, T>> {
        let Some(results) = &self.results else {
            return Vec::new();
        };
        results.try_iter().collect()
    }

    /// Tiles queued or being read.
    pub fn busy_count(&self) -> usize {
        let queue = self.shared.lock();
        queue.pending.len() + queue.in_flight.len()
    }

    pub fn is_in_flight(&self, key: &K) -> bool {
        self.shared.lock().in_flight.contains(key)
    }
}

impl<K: LoaderKey, T: Send + Sync + 'static> Drop for TileLoader<K, T> {
    fn drop(&mut self) {
        {
            let mut queue = self.shared.lock();
            queue.shutdown = true;
            queue.pending.clear();
        }
        self.shared.wake.notify_all();
        // Dropping the receiver wakes workers blocked on a full result queue.
        self.results = None;
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                log::error!("a tile loader thread panicked");
            }
        }
    }
}

struct Worker<K, T> {
    shared: Arc<Shared<K>>,
    read: TileReader<K, T>,
    sender: SyncSender<LoadedTile<K, T>>,
    notify: Arc<dyn Fn() + Send + Sync>,
}

impl<K: LoaderKey, T: Send + Sync + 'static> Worker<K, T> {
    fn run(self) {
        loop {
            let key = {
                let mut queue = self.shared.lock();
                loop {
                    if queue.shutdown {
                        return;
                    }
                    if let Some(key) = queue.pending.pop_front() {
                        queue.in_flight.insert(key);
                        break key;
                    }
                    queue = self.shared.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let result = (self.read)(key).map(Arc::new);
            let mut tile = LoadedTile { key, result };
            // Blocking send, but give up if the loader is shutting down.
            loop {
                match self.sender.try_send(tile) {
                    Ok(()) => break,
                    Err(TrySendError::Disconnected(_)) => return,
                    Err(TrySendError::Full(back)) => {
                        tile = back;
                        if self.shared.lock().shutdown {
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                }
            }
            // Only now leave in_flight: the result is visible to the UI before the key could be re-queued.
            self.shared.lock().in_flight.remove(&key);
            (self.notify)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{LevelInfo, SlideMetadata};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// A synthetic slide: pixel value encodes the level; reads at level 1 fail.
    struct FakeSlide {
        path: PathBuf,
        meta: SlideMetadata,
        reads: AtomicUsize,
    }

    impl FakeSlide {
        fn new() -> Self {
            let levels = vec![
                LevelInfo {
                    width_px: 1000,
                    height_px: 800,
                    downsample: 1.0,
                },
                LevelInfo {
                    width_px: 500,
                    height_px: 400,
                    downsample: 2.0,
                },
            ];
            Self {
                path: PathBuf::from("fake.svs"),
                meta: SlideMetadata {
                    vendor: "fake".into(),
                    levels,
                    mpp_x: Some(0.5),
                    mpp_y: Some(0.5),
                    objective_power: Some(20.0),
                    properties: Default::default(),
                    associated_images: vec![],
                    ..Default::default()
                },
                reads: AtomicUsize::new(0),
            }
        }
    }

    impl SlideSource for FakeSlide {
        fn path(&self) -> &Path {
            &self.path
        }
        fn metadata(&self) -> &SlideMetadata {
            &self.meta
        }
        fn read_region(
            &self,
            _pos: (u64, u64),
            level: usize,
            width: u32,
            height: u32,
        ) -> Result<RgbaImage, SlideError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            if level == 1 {
                return Err(crate::source::read_failed(&self.path, "level 1", "corrupt JPEG"));
            }
            Ok(RgbaImage {
                width,
                height,
                pixels: vec![level as u8; width as usize * height as usize * 4],
            })
        }
        fn read_associated_image(&self, name: &str) -> Result<RgbaImage, SlideError> {
            Err(SlideError::NoSuchAssociatedImage {
                path: self.path.clone(),
                name: name.into(),
            })
        }
    }

    fn collect(loader: &TileLoader, n: usize) -> Vec<LoadedTile> {
        collect_until(loader, |out| out.len() >= n)
    }

    /// Drains results until `done` says so (or 10 s pass).
    fn collect_until(loader: &TileLoader, done: impl Fn(&[LoadedTile]) -> bool) -> Vec<LoadedTile> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while !done(&out) && Instant::now() < deadline {
            out.extend(loader.drain());
            std::thread::sleep(Duration::from_millis(1));
        }
        out
    }

    #[test]
    fn loads_tiles_and_reports_failures_with_the_path() {
        let slide = Arc::new(FakeSlide::new());
        let pyramid = TilePyramid::new(slide.meta.levels.clone(), 256);
        let notified = Arc::new(AtomicUsize::new(0));
        let counter = notified.clone();
        let loader = TileLoader::new(
            slide.clone(),
            pyramid,
            2,
            Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let good = TileKey {
            level: 0,
            col: 3,
            row: 3,
        };
        let bad = TileKey {
            level: 1,
            col: 0,
            row: 0,
        };
        loader.set_wanted(&[good, bad]);
        let results = collect(&loader, 2);
        assert_eq!(results.len(), 2);
        let good_tile = results.iter().find(|t| t.key == good).unwrap();
        let image = good_tile.result.as_ref().unwrap();
        // Edge tile: 1000 - 768 = 232 wide, 800 - 768 = 32 high.
        assert_eq!((image.width, image.height), (232, 32));
        let bad_tile = results.iter().find(|t| t.key == bad).unwrap();
        let err = bad_tile.result.as_ref().unwrap_err().to_string();
        assert!(err.contains("fake.svs") && err.contains("corrupt JPEG"), "{err}");
        assert!(notified.load(Ordering::SeqCst) >= 2);
        assert_eq!(loader.busy_count(), 0);
    }

    #[test]
    fn newer_wanted_list_replaces_the_old_one() {
        let slide = Arc::new(FakeSlide::new());
        let pyramid = TilePyramid::new(slide.meta.levels.clone(), 16);
        let loader = TileLoader::new(slide.clone(), pyramid, 1, Arc::new(|| {})).unwrap();
        // 200 tiles wanted, then the view moves: only 3 new ones are wanted.
        let old: Vec<TileKey> = (0..200)
            .map(|i| TileKey {
                level: 0,
                col: i % 50,
                row: i / 50,
            })
            .collect();
        loader.set_wanted(&old);
        let new: Vec<TileKey> = (0..3)
            .map(|i| TileKey {
                level: 0,
                col: i,
                row: 40,
            })
            .collect();
        loader.set_wanted(&new);
        // The one old tile that may have been in flight also comes back: wait for the new ones.
        let results = collect_until(&loader, |out| new.iter().all(|key| out.iter().any(|t| t.key == *key)));
        let got: HashSet<TileKey> = results.iter().map(|t| t.key).collect();
        for key in &new {
            assert!(got.contains(key), "{key:?} not loaded");
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = loader.drain();
        // At most one old tile was already in flight when the list was replaced.
        assert!(
            slide.reads.load(Ordering::SeqCst) <= 3 + 2,
            "old requests were not dropped"
        );
    }

    #[test]
    fn dropping_the_loader_stops_its_threads_even_with_a_full_result_queue() {
        let slide = Arc::new(FakeSlide::new());
        let pyramid = TilePyramid::new(slide.meta.levels.clone(), 8);
        let loader = TileLoader::new(slide, pyramid, 2, Arc::new(|| {})).unwrap();
        let many: Vec<TileKey> = (0..500)
            .map(|i| TileKey {
                level: 0,
                col: i % 100,
                row: i / 100,
            })
            .collect();
        loader.set_wanted(&many);
        std::thread::sleep(Duration::from_millis(100));
        drop(loader); // must not hang
    }
}
