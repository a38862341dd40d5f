//! The few fields of a JSON document that the bulk encoding reads — its `_id` parts,
//! `@timestamp` and the index name's fields — through one trait, over either a parsed
//! [`serde_json::Value`] or [`Found`]: those fields picked out of the record's bytes in one pass
//! that builds nothing else, for a document that is then sent as it came. The pass uses the
//! sinks' own JSON reader (`crate::scan`, shared with the InfluxDB encoder); what it reads is
//! checked against serde_json's parse by the `sink_records` fuzz target.

use crate::scan::{Scalar, Scanner};
use serde_json::{Number, Value};
use std::borrow::Cow;

/// A scalar found at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// A number.
    Number(Number),
    /// `true` or `false`.
    Bool(bool),
}

impl Leaf<'_> {
    /// The text of a string leaf.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Leaf::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number leaf that is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Leaf::Number(n) => n.as_u64(),
            _ => None,
        }
    }
}

/// A JSON document's fields by path (`["log", "file", "inode"]`).
pub trait Fields {
    /// The scalar at `path`; None when something on the way is missing or not an object, or the
    /// value there is null, an array or an object.
    fn leaf<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<Leaf<'_>>;
}

impl Fields for Value {
    fn leaf<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<Leaf<'_>> {
        match path.into_iter().try_fold(self, |v, key| v.get(key))? {
            Value::String(s) => Some(Leaf::Str(Cow::Borrowed(s))),
            Value::Number(n) => Some(Leaf::Number(n.clone())),
            Value::Bool(b) => Some(Leaf::Bool(*b)),
            _ => None,
        }
    }
}

/// The paths to pick out, as a tree of member names; each path's end has a slot in [`Found`].
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    root: Node,
    slots: usize,
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: Vec<(String, Node)>,
    /// This node's own slot, when a path ends here.
    slot: Option<usize>,
    /// The slots of this node and everything under it: a member given again replaces them all.
    first_slot: usize,
    end_slot: usize,
}

impl Wanted {
    /// The tree of `paths`.
    pub fn new<'p>(paths: impl IntoIterator<Item = Vec<&'p str>>) -> Wanted {
        let mut wanted = Wanted::default();
        for path in paths {
            let mut node = &mut wanted.root;
            for key in path {
                let at = match node.children.iter().position(|(k, _)| k == key) {
                    Some(at) => at,
                    None => {
                        node.children.push((key.to_string(), Node::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            // Numbered below, once the tree is whole.
            node.slot = Some(0);
        }
        number(&mut wanted.root, &mut wanted.slots);
        wanted
    }

    /// The wanted fields of `bytes`, if they are one JSON object (else None: the caller parses
    /// them fully, which also says what is wrong). Nothing but those fields is kept.
    pub fn find<'a>(&'a self, bytes: &'a [u8]) -> Option<Found<'a>> {
        let mut scanner = Scanner::new(bytes).ok()?;
        if !scanner.at_object() {
            return None;
        }
        let mut slots = vec![None; self.slots];
        walk(&mut scanner, &self.root, &mut slots).ok()?;
        scanner.finish().ok()?;
        Some(Found { wanted: self, slots })
    }

    fn slot<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<usize> {
        let node = path
            .into_iter()
            .try_fold(&self.root, |node, key| node.children.iter().find(|(k, _)| k == key).map(|(_, n)| n))?;
        node.slot
    }
}

/// Numbers the slots depth first, so a node's slots (its own and those under it) are contiguous.
fn number(node: &mut Node, next: &mut usize) {
    node.first_slot = *next;
    if node.slot.is_some() {
        node.slot = Some(*next);
        *next += 1;
    }
    for (_, child) in &mut node.children {
        number(child, next);
    }
    node.end_slot = *next;
}

/// The wanted fields of one document.
pub struct Found<'a> {
    wanted: &'a Wanted,
    slots: Vec<Option<Leaf<'a>>>,
}

impl Found<'_> {
    /// Whether the document has a scalar at `path` (one of the wanted paths).
    pub fn has<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> bool {
        self.leaf(path).is_some()
    }
}

impl Fields for Found<'_> {
    fn leaf<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<Leaf<'_>> {
        self.slots.get(self.wanted.slot(path)?)?.clone()
    }
}

/// Reads one JSON value against a node of the tree, filling the slots it reaches. Recursion
/// follows only the tree (a few levels); everything else is skipped without it.
fn walk<'a>(scanner: &mut Scanner<'a>, node: &Node, slots: &mut [Option<Leaf<'a>>]) -> Result<(), String> {
    if scanner.at_object() {
        let mut object = scanner.begin_object()?;
        while let Some(key) = scanner.next_key(&mut object)? {
            match node.children.iter().find(|(name, _)| scanner.is(key, name)) {
                Some((_, child)) => {
                    // A member given again replaces what the first one held, as in a parsed
                    // `Value` the last one wins.
                    for slot in slots.iter_mut().take(child.end_slot).skip(child.first_slot) {
                        *slot = None;
                    }
                    walk(scanner, child, slots)?;
                }
                None => scanner.skip_value()?,
            }
        }
        return Ok(());
    }
    if scanner.at_array() {
        return Ok(scanner.skip_value()?);
    }
    let leaf = match scanner.value()? {
        Scalar::Text(span) => Some(Leaf::Str(scanner.text(span))),
        Scalar::Number { text, integer } => {
            // A number out of a float's range is an error, as when serde_json parses it.
            Some(Leaf::Number(json_number(&scanner.text(text), integer).ok_or("number out of range")?))
        }
        Scalar::Bool(b) => Some(Leaf::Bool(b)),
        Scalar::Null | Scalar::Composite => None,
    };
    if let (Some(slot), Some(leaf)) = (node.slot.and_then(|s| slots.get_mut(s)), leaf) {
        *slot = Some(leaf);
    }
    Ok(())
}

/// A JSON number's text as serde_json reads it: an unsigned or negative integer while it fits,
/// else a float (so is `-0`, which keeps its sign); None beyond a float's range.
fn json_number(text: &str, integer: bool) -> Option<Number> {
    if integer {
        if !text.starts_with('-') {
            if let Ok(n) = text.parse::<u64>() {
                return Some(n.into());
            }
        } else if let Ok(n) = text.parse::<i64>() {
            if n != 0 {
                return Some(n.into());
            }
        }
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DOC: &str = r#"{"@timestamp":"2026-12-03T10:00:00Z","host":{"name":"web\u002d1"},"n":-3,"f":1.5,"ok":true,
        "log":{"file":{"inode":77,"path":null,"tags":["a",{"inode":1}]},"offset":140},"dup":1,"dup":2,
        "again":{"x":1},"again":{"y":2},"\u0061gain":{"z":3},"scalar":{"s":1},"scalar":"flat"}"#;

    const PATHS: &[&[&str]] = &[
        &["@timestamp"],
        &["host", "name"],
        &["n"],
        &["f"],
        &["ok"],
        &["log", "file", "inode"],
        &["log", "file", "path"],
        &["log", "file", "tags"],
        &["log", "file"],
        &["log", "offset"],
        &["log", "offset", "deeper"],
        &["missing"],
        &["host", "missing"],
        &["dup"],
        &["again", "x"],
        &["again", "y"],
        &["again", "z"],
        &["scalar", "s"],
        &["scalar"],
    ];

    #[test]
    fn the_fields_found_in_place_are_those_of_the_parsed_document() {
        let value: Value = serde_json::from_str(DOC).unwrap();
        let wanted = Wanted::new(PATHS.iter().map(|p| p.to_vec()));
        let found = wanted.find(DOC.as_bytes()).unwrap();
        for path in PATHS {
            assert_eq!(found.leaf(path.iter().copied()), value.leaf(path.iter().copied()), "{path:?}");
        }
        assert_eq!(found.leaf(["host", "name"]).unwrap().as_str(), Some("web-1"), "escapes decoded");
        assert_eq!(found.leaf(["log", "file", "inode"]).unwrap().as_u64(), Some(77));
        assert_eq!(found.leaf(["n"]).unwrap().as_u64(), None, "negative");
        assert_eq!(found.leaf(["dup"]).unwrap().as_u64(), Some(2), "the last of a repeated name");
        assert_eq!(found.leaf(["again", "x"]), None, "a repeated object replaces the first");
        assert!(found.has(["@timestamp"]) && !found.has(["message"]));
        assert_eq!(found.leaf(["not", "wanted"]), None);
    }

    #[test]
    fn only_one_json_object_is_read_in_place() {
        let wanted = Wanted::new([vec!["a"]]);
        for text in ["[1,2]", "\"text\"", "{\"a\":1", "{\"a\":1} x", "not json", "", "{\"a\":[1,}"] {
            assert!(wanted.find(text.as_bytes()).is_none(), "{text}");
        }
        // Deep nesting is skipped without recursion (no stack overflow, whatever the depth); the
        // document goes on as it came, and Elasticsearch's own depth limit judges it.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(wanted.find(deep.as_bytes()).unwrap().leaf(["a"]), None);
        let unbalanced = format!("{{\"a\":{}}}", "[".repeat(100_000));
        assert!(wanted.find(unbalanced.as_bytes()).is_none());
        let found = wanted.find(b" {\"a\\u0062\":1,\"a\":{\"b\":[1,{\"c\":2}]}} ").unwrap();
        assert_eq!(found.leaf(["a"]), None, "an object is not a scalar");
    }
}
