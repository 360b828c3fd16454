//! [`ByteLru`]: a least-recently-used cache bounded by the total size of its values in bytes.

use std::collections::HashMap;
use std::hash::Hash;

/// LRU cache whose budget is in bytes; each value's size is given when it is inserted.
/// Lookups and inserts are O(1) amortised; eviction scans the recency order lazily.
pub struct ByteLru<K, V> {
    budget_bytes: usize,
    used_bytes: usize,
    clock: u64,
    entries: HashMap<K, Entry<V>>,
    /// (stamp, key) in insertion order of stamps; stale stamps are skipped on eviction.
    order: std::collections::VecDeque<(u64, K)>,
}

struct Entry<V> {
    value: V,
    size_bytes: usize,
    stamp: u64,
}

impl<K: Hash + Eq + Clone, V> ByteLru<K, V> {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            used_bytes: 0,
            clock: 0,
            entries: HashMap::new(),
            order: Default::default(),
        }
    }

    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Changes the budget, evicting least-recently-used entries until it holds. Returns them.
    pub fn set_budget(&mut self, budget_bytes: usize) -> Vec<(K, V)> {
        self.budget_bytes = budget_bytes;
        let mut evicted = Vec::new();
        while self.used_bytes > self.budget_bytes {
            let Some((stamp, key)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&key).is_none_or(|e| e.stamp != stamp) {
                continue;
            }
            if let Some(entry) = self.entries.remove(&key) {
                self.used_bytes -= entry.size_bytes;
                evicted.push((key, entry.value));
            }
        }
        evicted
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Returns the value and marks it most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.get_mut(key)?;
        entry.stamp = clock;
        self.order.push_back((clock, key.clone()));
        self.compact_order_if_bloated();
        self.entries.get(key).map(|e| &e.value)
    }

    /// Returns the value without touching its recency.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|e| &e.value)
    }

    /// Inserts a value, then evicts least-recently-used entries until the budget holds
    /// (the new entry itself is kept even if it alone exceeds the budget). Returns evicted keys.
    pub fn insert(&mut self, key: K, value: V, size_bytes: usize) -> Vec<(K, V)> {
        self.clock += 1;
        if let Some(old) = self.entries.insert(
            key.clone(),
            Entry {
                value,
                size_bytes,
                stamp: self.clock,
            },
        ) {
            self.used_bytes -= old.size_bytes;
        }
        self.used_bytes += size_bytes;
        self.order.push_back((self.clock, key.clone()));
        let evicted = self.evict_to_budget(&key);
        self.compact_order_if_bloated();
        evicted
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let entry = self.entries.remove(key)?;
        self.used_bytes -= entry.size_bytes;
        Some(entry.value)
    }

    /// Keeps only the entries whose key passes `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let mut freed = 0;
        self.entries.retain(|key, entry| {
            let kept = keep(key);
            if !kept {
                freed += entry.size_bytes;
            }
            kept
        });
        self.used_bytes -= freed;
        let entries = &self.entries;
        self.order
            .retain(|(stamp, key)| entries.get(key).is_some_and(|e| e.stamp == *stamp));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.used_bytes = 0;
    }

    pub fn set_budget_bytes(&mut self, budget_bytes: usize) -> Vec<(K, V)> {
        self.budget_bytes = budget_bytes;
        match self.order.back().map(|(_, k)| k.clone()) {
            Some(newest) => self.evict_to_budget(&newest),
            None => Vec::new(),
        }
    }

    fn evict_to_budget(&mut self, keep: &K) -> Vec<(K, V)> {
        let mut evicted = Vec::new();
        while self.used_bytes > self.budget_bytes {
            let Some((stamp, key)) = self.order.pop_front() else {
                break;
            };
            let live = self.entries.get(&key).is_some_and(|e| e.stamp == stamp);
            if !live {
                continue;
            }
            if &key == keep {
                self.order.push_back((stamp, key));
                if self.entries.len() == 1 {
                    break;
                }
                continue;
            }
            if let Some(entry) = self.entries.remove(&key) {
                self.used_bytes -= entry.size_bytes;
                evicted.push((key, entry.value));
            }
        }
        evicted
    }

    /// Keeps the recency queue proportional to the number of entries.
    fn compact_order_if_bloated(&mut self) {
        if self.order.len() > 4 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(stamp, key)| entries.get(key).is_some_and(|e| e.stamp == *stamp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_budget_evicts_the_oldest_at_once() {
        let mut cache = ByteLru::new(30);
        cache.insert("a", 1, 10);
        cache.insert("b", 2, 10);
        cache.insert("c", 3, 10);
        cache.get(&"a");
        let evicted = cache.set_budget(15);
        assert_eq!(evicted, vec![("b", 2), ("c", 3)]);
        assert_eq!((cache.used_bytes(), cache.budget_bytes()), (10, 15));
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let mut cache = ByteLru::new(30);
        cache.insert("a", 1, 10);
        cache.insert("b", 2, 10);
        cache.insert("c", 3, 10);
        assert_eq!(cache.get(&"a"), Some(&1)); // a is now the newest
        let evicted = cache.insert("d", 4, 10);
        assert_eq!(evicted, vec![("b", 2)]);
        assert!(cache.contains(&"a") && cache.contains(&"c") && cache.contains(&"d"));
        assert_eq!(cache.used_bytes(), 30);
    }

    #[test]
    fn replacing_a_key_updates_size() {
        let mut cache = ByteLru::new(100);
        cache.insert(1, "x", 40);
        cache.insert(1, "y", 60);
        assert_eq!(cache.used_bytes(), 60);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.peek(&1), Some(&"y"));
    }

    #[test]
    fn retain_frees_bytes() {
        let mut cache = ByteLru::new(100);
        for k in 0..10 {
            cache.insert(k, (), 10);
        }
        cache.retain(|k| k % 2 == 0);
        assert_eq!(cache.len(), 5);
        assert_eq!(cache.used_bytes(), 50);
        assert!(cache.contains(&4) && !cache.contains(&5));
    }

    #[test]
    fn oversized_entry_is_kept_alone() {
        let mut cache = ByteLru::new(10);
        cache.insert(1, (), 5);
        let evicted = cache.insert(2, (), 50);
        assert_eq!(evicted.len(), 1);
        assert!(cache.contains(&2));
        assert_eq!(cache.used_bytes(), 50);
    }

    #[test]
    fn recency_queue_stays_bounded_under_many_gets() {
        let mut cache = ByteLru::new(1000);
        for k in 0..10 {
            cache.insert(k, k, 1);
        }
        for i in 0..100_000 {
            cache.get(&(i % 10));
        }
        assert!(cache.order.len() <= 4 * 10 + 64 + 1);
        let evicted = cache.set_budget_bytes(3);
        assert_eq!(evicted.len(), 7);
        // The three most recently used survive: 97_999 % 10 etc.
        for k in [7, 8, 9] {
            assert!(cache.contains(&k), "{k}");
        }
    }
}
