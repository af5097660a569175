//! Mirrored directories. A directory's entries become catalog children: datasets each
//! format detects (or groups of files one makes, as numbered WebDataset shards), and
//! subdirectories. The directory is scanned again when used, at most once per
//! [`RESCAN_AFTER`], so the tree follows datasets that appear, change or disappear while
//! mounted; entries whose files are unchanged keep their opened dataset (or the reason they
//! were skipped), so a rescan costs a `readdir` and a `stat` per entry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::{DatasetNode, Entry, dataset_node};
use crate::source::{FileGroup, Member, Source, detect};
use crate::tree::Attributes;

/// How stale a directory's listing may be.
pub const RESCAN_AFTER: Duration = Duration::from_secs(1);

/// Suffixes of entries still being written: AMReX writes `plt01200.temp` and renames it to
/// `plt01200` once complete; other writers use `.tmp` or `.part`.
const IN_PROGRESS: &[&str] = &[".temp", ".tmp", ".part"];

/// Bumped whenever any directory's listing changes: rendered group documents of
/// directories are kept until it moves.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A group that mirrors a directory, or the root that holds several sources.
pub struct DirNode {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

struct State {
    listing: Arc<Listing>,
    /// When the directory was last read (`None`: never).
    scanned: Option<Instant>,
    /// The group document and the generation it was rendered at.
    document: Option<(u64, Arc<[u8]>)>,
}

#[derive(Default)]
pub struct Listing {
    pub children: BTreeMap<String, Entry>,
    pub skipped: Vec<Skipped>,
    /// The directory's entries as last read, with their identities.
    seen: BTreeMap<PathBuf, Stamp>,
    /// What each set of entries became, to reuse while they are unchanged.
    outcomes: HashMap<Vec<PathBuf>, Outcome>,
}

/// A dataset left out of the tree, and why.
#[derive(Clone)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

#[derive(Clone)]
enum Outcome {
    Child(String, Entry),
    Skipped(Skipped),
}

/// What identifies one version of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    file: crate::io::Stamp,
    dir: bool,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            file: crate::io::Stamp::of(&meta),
            dir: meta.is_dir(),
        })
    }
}

/// The current generation of directory listings.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

impl DirNode {
    pub fn scanned(path: &Path) -> Arc<Self> {
        Arc::new(DirNode {
            path: Some(path.into()),
            state: Mutex::new(State {
                listing: Arc::default(),
                scanned: None,
                document: None,
            }),
        })
    }

    /// A group whose children never change (the root of several sources).
    pub fn fixed(listing: Listing) -> Arc<Self> {
        Arc::new(DirNode {
            path: None,
            state: Mutex::new(State {
                listing: Arc::new(listing),
                scanned: None,
                document: None,
            }),
        })
    }

    /// Whether this group mirrors a directory (its children can change).
    pub fn is_scanned(&self) -> bool {
        self.path.is_some()
    }

    /// The children, reading the directory again if the listing is older than
    /// [`RESCAN_AFTER`]. Concurrent callers wait for one scan.
    pub fn listing(&self) -> Arc<Listing> {
        let mut state = self.state.lock();
        if let Some(path) = &self.path
            && state.scanned.is_none_or(|t| t.elapsed() >= RESCAN_AFTER)
        {
            let first = state.scanned.is_none();
            if let Some(fresh) = scan(path, &state.listing, first) {
                state.listing = Arc::new(fresh);
                GENERATION.fetch_add(1, Ordering::AcqRel);
            }
            state.scanned = Some(Instant::now());
        }
        state.listing.clone()
    }

    /// Rescans (where due) this directory and every directory below it.
    pub fn refresh(&self) {
        for child in self.listing().children.values() {
            if let Entry::Dir(dir) = child {
                dir.refresh();
            }
        }
    }

    /// The group document, from `render` when a listing below changed since the last.
    pub fn document(&self, render: impl FnOnce() -> Vec<u8>) -> Arc<[u8]> {
        self.refresh();
        let generation = generation();
        if let Some((at, doc)) = &self.state.lock().document
            && *at == generation
        {
            return doc.clone();
        }
        let doc: Arc<[u8]> = render().into();
        self.state.lock().document = Some((generation, doc.clone()));
        doc
    }

    pub fn attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(path) = &self.path {
            attributes.insert("source".into(), json!(path.display().to_string()));
        }
        let listing = self.listing();
        if !listing.skipped.is_empty() {
            let list: Vec<_> = listing
                .skipped
                .iter()
                .map(|s| json!({"path": s.path, "reason": s.reason}))
                .collect();
            attributes.insert("skipped".into(), Value::Array(list));
        }
        attributes
    }
}

/// Reads `dir` and returns its listing, or `None` if nothing changed since `previous`
/// (always a listing on the `first` scan). Hidden entries, entries still being written
/// and the source's own `zarr.json` are ignored; symlinks are followed only when they stay
/// inside the directory; files no format recognises are not datasets.
fn scan(dir: &Path, previous: &Listing, first: bool) -> Option<Listing> {
    let mut listing = Listing::default();
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            let reason = format!("cannot list directory: {e}");
            let same = previous.children.is_empty()
                && previous.skipped.len() == 1
                && previous.skipped[0].reason == reason;
            if same && !first {
                return None;
            }
            listing.skip(vec![dir.into()], reason);
            return Some(listing);
        }
    };
    let base = dir.canonicalize().unwrap_or_else(|_| dir.into());
    let mut paths: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut candidates = Vec::new();
    for path in paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            listing.seen.extend(Stamp::of(&path).map(|s| (path.clone(), s)));
            listing.skip(vec![path], "name is not valid UTF-8".into());
            continue;
        };
        if name.starts_with('.') || name == "zarr.json" {
            continue;
        }
        if IN_PROGRESS.iter().any(|s| name.ends_with(s)) {
            debug!(path = %path.display(), "still being written: not shown");
            continue;
        }
        let Some(stamp) = Stamp::of(&path) else {
            continue;
        };
        listing.seen.insert(path.clone(), stamp);
        if path.is_symlink() && !path.canonicalize().is_ok_and(|target| target.starts_with(&base)) {
            listing.skip(
                vec![path],
                "symbolic link leads outside the source directory".into(),
            );
            continue;
        }
        candidates.push(path);
    }
    if !first && listing.seen == previous.seen {
        return None;
    }

    let seen = listing.seen.clone();
    let unchanged = |sources: &[PathBuf]| {
        sources
            .iter()
            .all(|p| previous.seen.get(p).is_some_and(|s| seen.get(p) == Some(s)))
    };
    let reuse = |sources: &[PathBuf]| {
        previous
            .outcomes
            .get(sources)
            .filter(|_| unchanged(sources))
            .cloned()
    };

    // Datasets made of several files, first: their files are not looked at one by one.
    let files: Vec<PathBuf> = candidates
        .iter()
        .filter(|p| seen.get(*p).is_some_and(|s| !s.dir))
        .cloned()
        .collect();
    let mut taken = HashSet::new();
    for format in crate::source::FORMATS {
        for group in format.file_groups(&files) {
            taken.extend(group.files.iter().cloned());
            let outcome = reuse(&group.files).unwrap_or_else(|| open_group(*format, &group));
            listing.add(group.files, outcome);
        }
    }
    for path in candidates.into_iter().filter(|p| !taken.contains(p)) {
        let sources = vec![path.clone()];
        let outcome = match reuse(&sources) {
            Some(outcome) => outcome,
            None => match detect(&path) {
                Some(format) => match format.open(&path) {
                    Ok(dataset) => Outcome::Child(
                        file_name(&path),
                        Entry::Dataset(dataset_node(format, &path, dataset)),
                    ),
                    Err(e) => skipped(&path, format!("not a readable {} dataset: {e}", format.name())),
                },
                None if path.is_dir() => {
                    // A directory that is still not a dataset keeps its node (and listing).
                    let kept = previous
                        .outcomes
                        .get(&sources)
                        .filter(|o| matches!(o, Outcome::Child(_, Entry::Dir(_))));
                    kept.cloned().unwrap_or_else(|| {
                        Outcome::Child(file_name(&path), Entry::Dir(DirNode::scanned(&path)))
                    })
                }
                None => {
                    debug!(path = %path.display(), "not a dataset");
                    continue;
                }
            },
        };
        listing.add(sources, outcome);
    }
    add_collections(dir, &mut listing);
    Some(listing)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn skipped(path: &Path, reason: String) -> Outcome {
    warn!(path = %path.display(), "skipped: {reason}");
    Outcome::Skipped(Skipped {
        path: path.display().to_string(),
        reason,
    })
}

fn open_group(format: &'static dyn Source, group: &FileGroup) -> Outcome {
    let shown = group.files.first().cloned().unwrap_or_default();
    match format.open_group(group) {
        Ok(dataset) => Outcome::Child(
            group.name.clone(),
            Entry::Dataset(dataset_node(format, &shown, dataset)),
        ),
        Err(e) => skipped(&shown, format!("not a readable {} dataset: {e}", format.name())),
    }
}

impl Listing {
    fn skip(&mut self, sources: Vec<PathBuf>, reason: String) {
        let path = sources.first().cloned().unwrap_or_default();
        self.add(sources, skipped(&path, reason));
    }

    /// Adds what `sources` became; a child whose name is taken is skipped instead.
    fn add(&mut self, sources: Vec<PathBuf>, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Child(name, _) if self.children.contains_key(&name) => {
                let path = sources.first().cloned().unwrap_or_default();
                skipped(&path, format!("the name '{name}' is taken"))
            }
            outcome => outcome,
        };
        match &outcome {
            Outcome::Child(name, entry) => {
                self.children.insert(name.clone(), entry.clone());
            }
            Outcome::Skipped(skip) => self.skipped.push(skip.clone()),
        }
        self.outcomes.insert(sources, outcome);
    }
}

/// Adds the views formats build over datasets side by side (a plotfile run's time series).
/// A view whose name is taken by a real entry is left out.
fn add_collections(dir: &Path, listing: &mut Listing) {
    for format in crate::source::FORMATS {
        let datasets: Vec<(&String, &Arc<DatasetNode>)> = listing
            .children
            .iter()
            .filter_map(|(name, entry)| match entry {
                Entry::Dataset(ds) if ds.format == format.name() => Some((name, ds)),
                _ => None,
            })
            .collect();
        if datasets.len() < 2 {
            continue;
        }
        let members: Vec<Member> = datasets
            .iter()
            .map(|(name, ds)| Member {
                name,
                root: &ds.root,
                planner: &ds.planner,
            })
            .collect();
        let views = format.collections(&members);
        for (name, dataset) in views {
            if listing.children.contains_key(&name) {
                warn!(dir = %dir.display(), "a {} view is not shown: '{name}' is taken", format.name());
                continue;
            }
            let node = dataset_node(*format, dir, dataset);
            listing.children.insert(name, Entry::Dataset(node));
        }
    }
}
