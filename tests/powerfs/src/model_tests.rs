//! The durability rules of the model, without FUSE.

use crate::model::{CutMode, Model, PAGE, ROOT};
use std::ffi::OsStr;

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn file(model: &mut Model, dir: u64, n: &str) -> u64 {
    model.create(dir, name(n), false, 0o644, 0, 0).unwrap()
}

fn contents(model: &Model, dir: u64, n: &str) -> Option<Vec<u8>> {
    let ino = model.lookup(dir, name(n)).ok()?;
    Some(model.read(ino, 0, u64::MAX).unwrap())
}

#[test]
fn written_but_not_synced_data_vanishes() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "a");
    m.fsync(ROOT).unwrap();
    m.fsync(f).unwrap();
    m.write(f, 0, b"hello").unwrap();
    assert_eq!(contents(&m, ROOT, "a").unwrap(), b"hello");
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "a").unwrap(), b"", "the name was synced, the data never was");
}

#[test]
fn synced_data_survives_and_later_writes_do_not() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "a");
    m.write(f, 0, b"one ").unwrap();
    m.fsync(f).unwrap();
    m.fsync(ROOT).unwrap();
    m.write(f, 4, b"two").unwrap();
    m.write(f, 0, b"ONE").unwrap();
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "a").unwrap(), b"one ");
}

#[test]
fn a_new_file_needs_its_directory_synced() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "a");
    m.write(f, 0, b"data").unwrap();
    m.fsync(f).unwrap();
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "a"), None, "fsync of the file alone does not make its name durable");
}

#[test]
fn rename_without_directory_fsync_reverts() {
    let mut m = Model::new();
    let old = file(&mut m, ROOT, "registry.json");
    m.write(old, 0, b"old").unwrap();
    m.fsync(old).unwrap();
    m.fsync(ROOT).unwrap();
    let tmp = file(&mut m, ROOT, "registry.json.tmp");
    m.write(tmp, 0, b"new").unwrap();
    m.fsync(tmp).unwrap();
    m.rename(ROOT, name("registry.json.tmp"), ROOT, name("registry.json"), false).unwrap();
    assert_eq!(contents(&m, ROOT, "registry.json").unwrap(), b"new");
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "registry.json").unwrap(), b"old");
    assert_eq!(contents(&m, ROOT, "registry.json.tmp"), None);

    // With the directory synced after the rename, the new version is the one that stays.
    let tmp = file(&mut m, ROOT, "registry.json.tmp");
    m.write(tmp, 0, b"newer").unwrap();
    m.fsync(tmp).unwrap();
    m.rename(ROOT, name("registry.json.tmp"), ROOT, name("registry.json"), false).unwrap();
    m.fsync(ROOT).unwrap();
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "registry.json").unwrap(), b"newer");
    assert_eq!(m.list(ROOT).unwrap().len(), 1);
}

#[test]
fn unlink_without_directory_fsync_comes_back() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "a");
    m.write(f, 0, b"kept").unwrap();
    m.fsync(f).unwrap();
    m.fsync(ROOT).unwrap();
    m.remove(ROOT, name("a"), false).unwrap();
    // Still readable through a handle that was open on it.
    assert_eq!(m.read(f, 0, 10).unwrap(), b"kept");
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "a").unwrap(), b"kept");
    m.remove(ROOT, name("a"), false).unwrap();
    m.fsync(ROOT).unwrap();
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "a"), None);
}

#[test]
fn truncate_is_durable_only_when_synced() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "log");
    m.write(f, 0, &[7; 10_000]).unwrap();
    m.fsync(f).unwrap();
    m.fsync(ROOT).unwrap();
    m.set_size(f, 100).unwrap();
    m.set_size(f, 5000).unwrap();
    let now = contents(&m, ROOT, "log").unwrap();
    assert_eq!(now.len(), 5000);
    assert!(now[100..].iter().all(|&b| b == 0), "bytes past a truncation read as zeros when the file grows");
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "log").unwrap(), vec![7; 10_000]);
}

#[test]
fn subdirectories_need_their_own_and_their_parents_fsync() {
    let mut m = Model::new();
    let d = m.create(ROOT, name("topic-0"), true, 0o755, 0, 0).unwrap();
    let f = file(&mut m, d, "0.log");
    m.write(f, 0, b"batch").unwrap();
    m.fsync(f).unwrap();
    m.fsync(d).unwrap();
    m.cut(CutMode::Strict);
    assert!(m.lookup(ROOT, name("topic-0")).is_err(), "the directory's own name was never synced");

    let d = m.create(ROOT, name("topic-0"), true, 0o755, 0, 0).unwrap();
    let f = file(&mut m, d, "0.log");
    m.write(f, 0, b"batch").unwrap();
    m.fsync(f).unwrap();
    m.fsync(ROOT).unwrap();
    m.cut(CutMode::Strict);
    let d = m.lookup(ROOT, name("topic-0")).unwrap();
    assert!(m.list(d).unwrap().is_empty(), "the directory exists but its entries were never synced");
}

#[test]
fn sparse_writes_and_reads_across_pages() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "index");
    m.set_size(f, 10 * PAGE).unwrap();
    m.write(f, PAGE - 2, b"abcd").unwrap();
    let all = m.read(f, 0, u64::MAX).unwrap();
    assert_eq!(all.len() as u64, 10 * PAGE);
    assert_eq!(&all[PAGE as usize - 2..PAGE as usize + 2], b"abcd");
    assert_eq!(m.read(f, PAGE - 1, 2).unwrap(), b"bc");
    assert!(m.read(f, 20 * PAGE, 5).unwrap().is_empty());
}

#[test]
fn torn_cut_keeps_synced_data_and_some_of_the_rest() {
    let mut kept_some = false;
    let mut dropped_some = false;
    for seed in 0..32 {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "log");
        m.write(f, 0, &[1; PAGE as usize]).unwrap();
        m.fsync(f).unwrap();
        m.fsync(ROOT).unwrap();
        m.write(f, PAGE, &[2; 4 * PAGE as usize]).unwrap();
        m.cut(CutMode::Torn { seed });
        let after = contents(&m, ROOT, "log").unwrap();
        assert_eq!(&after[..PAGE as usize], &[1; PAGE as usize][..], "seed {seed}: synced data must stay");
        assert!(after.len() as u64 == PAGE || after.len() as u64 == 5 * PAGE, "seed {seed}: {}", after.len());
        for page in after[PAGE as usize..].chunks(PAGE as usize) {
            assert!(page.iter().all(|&b| b == 2) || page.iter().all(|&b| b == 0), "seed {seed}: a page is whole");
            kept_some |= page[0] == 2;
            dropped_some |= page[0] == 0;
        }
    }
    assert!(kept_some && dropped_some, "over 32 seeds some unsynced pages survive and some do not");
}

#[test]
fn unsynced_lists_what_a_cut_would_change() {
    let mut m = Model::new();
    assert!(m.unsynced().is_empty());
    let f = file(&mut m, ROOT, "a");
    assert_eq!(m.unsynced(), vec![ROOT, f]);
    m.fsync(ROOT).unwrap();
    m.fsync(f).unwrap();
    assert!(m.unsynced().is_empty());
}

#[test]
fn an_fsync_covers_what_was_written_before_it_began_and_never_goes_backwards() {
    let mut m = Model::new();
    let f = file(&mut m, ROOT, "log");
    m.fsync(ROOT).unwrap();
    m.write(f, 0, b"first").unwrap();
    let early = m.prepare_sync(f).unwrap();
    m.write(f, 5, b" second").unwrap();
    let late = m.prepare_sync(f).unwrap();
    m.commit(late);
    m.commit(early);
    m.write(f, 12, b" third").unwrap();
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "log").unwrap(), b"first second");

    let early = m.prepare_sync(f).unwrap();
    m.write(f, 0, b"FIRST").unwrap();
    m.commit(early);
    m.cut(CutMode::Strict);
    assert_eq!(contents(&m, ROOT, "log").unwrap(), b"first second", "a write after the fsync began is not covered");
}
