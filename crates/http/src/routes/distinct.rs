//! The distinct members of a stream of strings, in sorted order, in bounded memory: up to a
//! number of them are kept in memory; past it, they are written out as sorted runs (spool files)
//! and merged when read. An OSCAL export names every asset of a system once, after its items;
//! a million items with a million assets would otherwise hold every name until the end.

use super::evidence::Spool;
use poam_persistence::StoreError;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::io::{self, BufRead, BufReader, BufWriter, Lines, Write};
use std::path::Path;

fn io_err(e: io::Error) -> StoreError {
    StoreError::Internal(format!("export spool: {e}"))
}

/// Distinct strings, sorted, at most `cap` of them in memory at a time.
pub(crate) struct Distinct<'a> {
    dir: &'a Path,
    cap: usize,
    held: BTreeSet<String>,
    runs: Vec<Spool>,
}

impl<'a> Distinct<'a> {
    /// Spills to files in `dir` when more than `cap` (at least 1) are held.
    pub(crate) fn new(dir: &'a Path, cap: usize) -> Distinct<'a> {
        Distinct {
            dir,
            cap: cap.max(1),
            held: BTreeSet::new(),
            runs: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, s: &str) -> Result<(), StoreError> {
        if !self.held.contains(s) {
            self.held.insert(s.to_owned());
            if self.held.len() >= self.cap {
                self.spill()?;
            }
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty() && self.runs.is_empty()
    }

    /// Writes what is held as one sorted run: one JSON string per line (a name may hold a
    /// newline; its JSON form does not).
    fn spill(&mut self) -> Result<(), StoreError> {
        let spool = Spool {
            path: self
                .dir
                .join(format!("export-distinct-{}", uuid::Uuid::new_v4())),
        };
        let mut out = BufWriter::new(std::fs::File::create(&spool.path).map_err(io_err)?);
        for s in std::mem::take(&mut self.held) {
            serde_json::to_writer(&mut out, &s)
                .map_err(|e| StoreError::Internal(format!("export spool: {e}")))?;
            out.write_all(b"\n").map_err(io_err)?;
        }
        out.flush().map_err(io_err)?;
        self.runs.push(spool);
        Ok(())
    }

    /// Every distinct string once, in order.
    pub(crate) fn sorted(mut self) -> Result<Sorted, StoreError> {
        if self.runs.is_empty() {
            return Ok(Sorted::Held(std::mem::take(&mut self.held).into_iter()));
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        let mut merge = Merge {
            readers: Vec::with_capacity(self.runs.len()),
            heap: BinaryHeap::new(),
            last: None,
            files: std::mem::take(&mut self.runs),
        };
        for run in &merge.files {
            let file = std::fs::File::open(&run.path).map_err(io_err)?;
            merge.readers.push(BufReader::new(file).lines());
        }
        for i in 0..merge.readers.len() {
            merge.refill(i)?;
        }
        Ok(Sorted::Merged(merge))
    }
}

/// The distinct strings in order: from memory, or merged from the runs.
pub(crate) enum Sorted {
    Held(std::collections::btree_set::IntoIter<String>),
    Merged(Merge),
}

pub(crate) struct Merge {
    readers: Vec<Lines<BufReader<std::fs::File>>>,
    /// The next string of each run that has one.
    heap: BinaryHeap<Reverse<(String, usize)>>,
    last: Option<String>,
    /// The runs, kept until the merge is dropped: their files are removed then.
    files: Vec<Spool>,
}

impl Merge {
    fn refill(&mut self, run: usize) -> Result<(), StoreError> {
        let Some(reader) = self.readers.get_mut(run) else {
            return Ok(());
        };
        if let Some(line) = reader.next() {
            let s: String = serde_json::from_str(&line.map_err(io_err)?)
                .map_err(|e| StoreError::Internal(format!("export spool: {e}")))?;
            self.heap.push(Reverse((s, run)));
        }
        Ok(())
    }
}

impl Iterator for Sorted {
    type Item = Result<String, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let m = match self {
            Sorted::Held(it) => return it.next().map(Ok),
            Sorted::Merged(m) => m,
        };
        loop {
            let Reverse((s, run)) = m.heap.pop()?;
            if let Err(e) = m.refill(run) {
                return Some(Err(e));
            }
            if m.last.as_deref() != Some(s.as_str()) {
                m.last = Some(s.clone());
                return Some(Ok(s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct(cap: usize, input: &[&str]) -> (Vec<String>, usize) {
        let dir = std::env::temp_dir();
        let mut d = Distinct::new(&dir, cap);
        for s in input {
            d.insert(s).unwrap_or_else(|e| panic!("{e:?}"));
        }
        let runs = d.runs.len();
        let out = d
            .sorted()
            .unwrap_or_else(|e| panic!("{e:?}"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e:?}"));
        (out, runs)
    }

    #[test]
    fn spilled_runs_merge_into_one_sorted_distinct_list() {
        let input = [
            "host-9",
            "host-1",
            "a\nb",
            "host-1",
            "quote \"q\"",
            "host-10",
            "é",
            "host-9",
            "",
            "host-2",
            "a\nb",
            "host-3",
            "host-0",
        ];
        let want: Vec<String> = input
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for cap in [1, 2, 3, 5, 100] {
            let (got, runs) = distinct(cap, &input);
            assert_eq!(got, want, "cap {cap}");
            // Small caps did spill: the merge, not the memory, made the list.
            assert_eq!(runs > 0, cap < want.len(), "cap {cap}");
        }
    }

    #[test]
    fn the_spool_files_are_removed_once_read() {
        let dir = std::env::temp_dir().join(format!("distinct-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut d = Distinct::new(&dir, 2);
        for s in ["c", "b", "a", "d", "e"] {
            d.insert(s).unwrap_or_else(|e| panic!("{e:?}"));
        }
        let sorted = d.sorted().unwrap_or_else(|e| panic!("{e:?}"));
        assert!(std::fs::read_dir(&dir).map_or(0, |r| r.count()) > 0);
        assert_eq!(sorted.count(), 5);
        assert_eq!(std::fs::read_dir(&dir).map_or(1, |r| r.count()), 0);
        let _ = std::fs::remove_dir(&dir);
    }
}
