//! A vector of slots that reuses freed ones: the loop's table of connections.
//!
//! A slot index is what the selector records as a source's owner. Indices are reused, so
//! whatever arrives late for a slot (a name lookup's answer) must carry something else that
//! tells the old occupant from the new (the session's serial number).

/// Slots holding `T`s.
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// The index the next [`Slab::put`] will use.
    pub fn vacant(&mut self) -> usize {
        match self.free.last() {
            Some(&i) => i,
            None => {
                self.slots.push(None);
                self.free.push(self.slots.len() - 1);
                self.slots.len() - 1
            }
        }
    }

    /// Stores `value` in the slot [`Slab::vacant`] named.
    pub fn put(&mut self, value: T) -> usize {
        let i = self.vacant();
        self.free.pop();
        self.slots[i] = Some(value);
        i
    }

    /// The value in slot `i`.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    /// Empties slot `i`.
    pub fn remove(&mut self, i: usize) -> Option<T> {
        let value = self.slots.get_mut(i)?.take();
        if value.is_some() {
            self.free.push(i);
        }
        value
    }

    /// How many slots are occupied.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Indices of occupied slots (a snapshot, so the slab may change while they are visited).
    pub fn indices(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_slots() {
        let mut s = Slab::default();
        assert_eq!(s.vacant(), 0);
        assert_eq!(s.put("a"), 0);
        assert_eq!(s.put("b"), 1);
        assert_eq!(s.remove(0), Some("a"));
        assert_eq!(s.remove(0), None, "removing twice frees once");
        assert_eq!(s.len(), 1);
        assert_eq!(s.vacant(), 0);
        assert_eq!(s.put("c"), 0);
        assert_eq!(s.get_mut(0), Some(&mut "c"));
        assert_eq!(s.indices(), vec![0, 1]);
        assert_eq!(s.put("d"), 2);
        assert_eq!(s.len(), 3);
    }
}
