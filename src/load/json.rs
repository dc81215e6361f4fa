//! Reading JSON text value by value, and the items of a list value one by one, holding at most
//! one value (or one item, and the list around it) at a time.
//!
//! Nothing is parsed here: strings and brackets are followed, so a value with a syntax error
//! inside ends where its brackets balance and the values after it are found all the same.

use std::io::{self, BufRead};

/// What [`JsonScanner::next`] found.
pub(super) enum Piece<'s> {
    /// A top-level value begins.
    Start,
    /// An item of the list value being read.
    Item(Item<'s>),
    /// A top-level value ends.
    End(End<'s>),
}

/// An item of a list: an element of a top-level array, or of the `items` array of a top-level
/// object.
pub(super) struct Item<'s> {
    /// The item as written; only its first `cap` bytes when it is longer.
    pub(super) text: &'s [u8],
    /// Its length.
    pub(super) len: usize,
    /// How deep it nests, counted from the top of its document (the top-level value is
    /// level 1).
    pub(super) deepest: usize,
    /// The `kind` of the list object, when it came before `items`; `Known(None)` for an array.
    pub(super) list_kind: ListKind<'s>,
}

/// The `kind` of the list an item belongs to, as far as the text has told it.
pub(super) enum ListKind<'s> {
    /// Known: the object's `kind` (a plain string before `items`), `None` for an array.
    Known(Option<&'s str>),
    /// Not said before the items: it may come after them, as `kubectl` prints it.
    Later,
}

/// A top-level value, at its end.
pub(super) struct End<'s> {
    /// The value as written, with the items of a list replaced by one `0`; only its first `cap`
    /// bytes when it is longer.
    pub(super) text: &'s [u8],
    /// The length of `text` as it would be without the cap.
    pub(super) text_len: usize,
    /// The length of the value as written, items included.
    pub(super) len: usize,
    /// How deep `text` nests (the top-level value is level 1).
    pub(super) deepest: usize,
    /// How deep the value nests, items included.
    pub(super) deepest_all: usize,
    /// Where the value ends in the input, in bytes from its start.
    pub(super) end: u64,
    /// Whether its items were read one by one ([`Piece::Item`]).
    pub(super) list: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between top-level values.
    Between,
    /// In a bare scalar (or stray characters); the number of bytes of its first character
    /// still to take.
    Scalar(usize),
    /// In a top-level string; whether its opening quote was taken.
    String(bool),
    /// In an object or array.
    Container,
}

/// What the field of a top-level object being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Other,
    Items,
    Kind,
}

/// What a byte does.
enum Step {
    /// Taken; go on.
    Next,
    /// Taken, and it ends the value.
    End,
    /// Not taken, and the value ended before it.
    EndBefore,
    /// Not taken: a value begins with it.
    Start,
    /// Not taken: it ends the item before it.
    Item,
}

/// Where the scanner is in the value being read.
struct State {
    /// The most bytes kept of a value (or of a list object without its items) and of an item.
    cap: usize,
    mode: Mode,
    in_string: bool,
    escaped: bool,
    depth: usize,
    deepest: usize,
    deepest_all: usize,
    /// The value, or the list object with its items replaced by one `0`.
    text: Vec<u8>,
    text_len: usize,
    /// Where the value started in the input.
    start: u64,
    /// Whether the value is an object (whose `kind` and `items` are looked for).
    object: bool,
    /// The last string of the object's top level, as a range of `text`.
    string_start: usize,
    last_string: Option<(usize, usize)>,
    /// The field whose value comes next at the object's top level.
    field: Option<Field>,
    /// Whether the string being read is the object's `kind`.
    reading_kind: bool,
    kind: Option<String>,
    /// The depth of the list's items' array (1 for a top-level array), 0 outside it.
    list_depth: usize,
    /// Whether items were read one by one.
    list: bool,
    in_item: bool,
    /// Whether the `0` that stands for the items is in `text`.
    items_kept: bool,
    /// Whether an item ended and no comma followed it yet. (An item ends at a comma or at
    /// the closing bracket, so the next byte between items is one of those.)
    after_item: bool,
    item: Vec<u8>,
    item_len: usize,
    item_deepest: usize,
}

impl State {
    fn keep(&mut self, b: u8) {
        if self.text.len() < self.cap {
            self.text.push(b);
        }
        self.text_len += 1;
    }

    /// A value begins with `b`, at `offset`.
    fn begin(&mut self, b: u8, offset: u64) {
        self.text.clear();
        self.text_len = 0;
        self.items_kept = false;
        self.after_item = false;
        self.start = offset;
        self.in_string = false;
        self.escaped = false;
        self.depth = 0;
        self.deepest = 0;
        self.deepest_all = 0;
        self.object = b == b'{';
        self.last_string = None;
        self.field = None;
        self.reading_kind = false;
        self.kind = None;
        self.list_depth = 0;
        self.list = false;
        self.in_item = false;
        self.mode = match b {
            b'{' | b'[' => Mode::Container,
            b'"' => Mode::String(false),
            // The whole first character, even if it is a delimiter: a value is never empty.
            0xF0.. => Mode::Scalar(4),
            0xE0.. => Mode::Scalar(3),
            0xC0.. => Mode::Scalar(2),
            _ => Mode::Scalar(1),
        };
    }

    fn step(&mut self, b: u8, offset: u64) -> Step {
        match self.mode {
            Mode::Between if b.is_ascii_whitespace() => Step::Next,
            Mode::Between => {
                self.begin(b, offset);
                Step::Start
            }
            Mode::Scalar(0) if b.is_ascii_whitespace() || b"{}[]\",".contains(&b) => {
                self.mode = Mode::Between;
                Step::EndBefore
            }
            Mode::Scalar(first) => {
                self.keep(b);
                self.mode = Mode::Scalar(first.saturating_sub(1));
                Step::Next
            }
            Mode::String(opened) => {
                self.keep(b);
                if !opened {
                    self.mode = Mode::String(true);
                } else if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.mode = Mode::Between;
                    return Step::End;
                }
                Step::Next
            }
            Mode::Container if self.in_item => self.item_step(b),
            Mode::Container if self.list_depth > 0 && self.depth == self.list_depth => match b {
                _ if b.is_ascii_whitespace() => Step::Next,
                // A comma after an item is the one `0` that stands for them all; any other
                // (leading, doubled, trailing) is kept, so that the object around the items
                // does not parse, as the list does not.
                b',' if self.after_item => {
                    self.after_item = false;
                    Step::Next
                }
                b',' => {
                    self.keep(b);
                    Step::Next
                }
                b']' | b'}' => {
                    if self.items_kept && !self.after_item {
                        self.keep(b',');
                    }
                    self.keep(b);
                    self.list_depth = 0;
                    self.close()
                }
                _ => {
                    self.in_item = true;
                    self.item.clear();
                    self.item_len = 0;
                    self.item_deepest = self.depth;
                    self.item_step(b)
                }
            },
            Mode::Container => {
                self.keep(b);
                if self.in_string {
                    if self.string_ends(b) && self.depth == 1 && self.object {
                        self.string_end();
                    }
                    return Step::Next;
                }
                if self.depth == 1 && self.object && !b.is_ascii_whitespace() && b != b':' {
                    // A value of the object's top level begins, or a key, or a comma.
                    let field = self.field.take();
                    match (field, b) {
                        (Some(Field::Items), b'[') if !self.list && self.text_len <= self.cap => {
                            self.list = true;
                            self.list_depth = 2;
                        }
                        (Some(Field::Kind), b'"') => self.reading_kind = true,
                        _ => {}
                    }
                }
                match b {
                    b'"' => {
                        self.in_string = true;
                        self.string_start = self.text.len();
                    }
                    b'{' | b'[' => {
                        self.depth += 1;
                        self.deepest = self.deepest.max(self.depth);
                        self.deepest_all = self.deepest_all.max(self.depth);
                        if self.depth == 1 && b == b'[' {
                            self.list = true;
                            self.list_depth = 1;
                        }
                    }
                    b'}' | b']' => return self.close(),
                    b':' if self.depth == 1 && self.object => {
                        let key = self.last_string.take().map(|(s, e)| &self.text[s..e]);
                        self.field = Some(match key {
                            Some(b"items") => Field::Items,
                            Some(b"kind") => Field::Kind,
                            _ => Field::Other,
                        });
                    }
                    _ => {}
                }
                Step::Next
            }
        }
    }

    /// A string of the object's top level ended.
    fn string_end(&mut self) {
        let end = self.text.len().saturating_sub(1);
        let range = (self.string_start, end);
        if self.text_len > self.cap || range.0 > range.1 {
            self.last_string = None;
            self.reading_kind = false;
            return;
        }
        if self.reading_kind {
            self.reading_kind = false;
            let kind = &self.text[range.0..range.1];
            if !kind.contains(&b'\\') {
                self.kind = std::str::from_utf8(kind).ok().map(str::to_owned);
            }
        }
        self.last_string = Some(range);
    }

    /// A closing bracket outside items.
    fn close(&mut self) -> Step {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            self.mode = Mode::Between;
            return Step::End;
        }
        Step::Next
    }

    /// Takes byte `b` of a string's contents: whether it closed the string.
    fn string_ends(&mut self, b: u8) -> bool {
        if self.escaped {
            self.escaped = false;
        } else if b == b'\\' {
            self.escaped = true;
        } else if b == b'"' {
            self.in_string = false;
            return true;
        }
        false
    }

    fn item_step(&mut self, b: u8) -> Step {
        if self.in_string {
            self.string_ends(b);
        } else {
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.item_deepest = self.item_deepest.max(self.depth);
                    self.deepest_all = self.deepest_all.max(self.depth);
                }
                b'}' | b']' if self.depth > self.list_depth => self.depth -= 1,
                b'}' | b']' | b',' if self.depth == self.list_depth => {
                    self.in_item = false;
                    // One `0` stands for all the items: the object around them stays valid
                    // JSON, and its size and parse do not grow with their number.
                    if !self.items_kept {
                        self.items_kept = true;
                        self.keep(b'0');
                    }
                    self.after_item = true;
                    return Step::Item;
                }
                _ => {}
            }
        }
        if self.item.len() < self.cap {
            self.item.push(b);
        }
        self.item_len += 1;
        Step::Next
    }
}

/// The top-level values of a JSON text read from a [`BufRead`], with the items of the lists
/// among them one by one: a top-level array's elements, and the elements of a top-level
/// object's `items` array (a `kind: List` or a typed list).
pub(super) struct JsonScanner<R> {
    reader: R,
    offset: u64,
    state: State,
}

impl<R: BufRead> JsonScanner<R> {
    /// Reads `reader`, `offset` bytes into the input, keeping at most `cap` bytes of a value
    /// (without the items of a list) and of an item.
    pub(super) fn new(reader: R, offset: u64, cap: usize) -> Self {
        JsonScanner {
            reader,
            offset,
            state: State {
                cap,
                mode: Mode::Between,
                in_string: false,
                escaped: false,
                depth: 0,
                deepest: 0,
                deepest_all: 0,
                text: Vec::new(),
                text_len: 0,
                start: 0,
                object: false,
                string_start: 0,
                last_string: None,
                field: None,
                reading_kind: false,
                kind: None,
                list_depth: 0,
                list: false,
                in_item: false,
                items_kept: false,
                after_item: false,
                item: Vec::new(),
                item_len: 0,
                item_deepest: 0,
            },
        }
    }

    /// How many bytes of the input were read.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The next piece, `None` at the end of the input.
    pub(super) fn next(&mut self) -> io::Result<Option<Piece<'_>>> {
        let step = loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if self.state.mode == Mode::Between {
                    return Ok(None);
                }
                // Cut off: what there is of the value, without the item it was in.
                self.state.in_item = false;
                self.state.mode = Mode::Between;
                break Step::End;
            }
            let mut taken = 0;
            let mut found = None;
            for &b in buf {
                let step = self.state.step(b, self.offset + taken as u64);
                match step {
                    Step::Next => taken += 1,
                    Step::End => {
                        taken += 1;
                        found = Some(step);
                        break;
                    }
                    Step::Start | Step::Item | Step::EndBefore => {
                        found = Some(step);
                        break;
                    }
                }
            }
            self.reader.consume(taken);
            self.offset += taken as u64;
            if let Some(step) = found {
                break step;
            }
        };
        let s = &self.state;
        Ok(Some(match step {
            Step::Start => Piece::Start,
            Step::Item => {
                let mut text = &s.item[..];
                let mut len = s.item_len;
                while let Some((last, rest)) = text.split_last() {
                    if !last.is_ascii_whitespace() {
                        break;
                    }
                    text = rest;
                    len -= 1;
                }
                let list_kind = match s.kind.as_deref() {
                    _ if !s.object => ListKind::Known(None),
                    Some(kind) => ListKind::Known(Some(kind)),
                    None => ListKind::Later,
                };
                Piece::Item(Item {
                    text,
                    len,
                    deepest: s.item_deepest,
                    list_kind,
                })
            }
            Step::Next | Step::End | Step::EndBefore => Piece::End(End {
                text: &s.text,
                text_len: s.text_len,
                len: usize::try_from(self.offset - s.start).unwrap_or(usize::MAX),
                deepest: s.deepest,
                deepest_all: s.deepest_all,
                end: self.offset,
                list: s.list,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonScanner, Piece};
    use crate::load::fixtures::*;
    use crate::load::{Limit, LoadLimits, Manifests};

    fn list(kind: &str, items: &[&str]) -> String {
        format!(
            r#"{{"apiVersion":"v1","kind":"{kind}","items":[{}]}}"#,
            items.join(",")
        )
    }

    #[test]
    fn json_lists_are_read_item_by_item_past_the_document_limit() {
        let limits = LoadLimits {
            max_document_bytes: 1000,
            ..LoadLimits::default()
        };
        let items = vec![GOOD_JSON; 50];
        for text in [list("List", &items), format!("[{}]", items.join(","))] {
            assert!(text.len() > 5 * limits.max_document_bytes);
            let m = Manifests::from_json_with(&text, &limits);
            assert_eq!(
                (m.ingresses.len(), m.errors.len()),
                (50, 0),
                "{:?}",
                m.errors
            );
            let m = Manifests::read(text.as_bytes(), &limits).unwrap();
            assert_eq!(
                (m.ingresses.len(), m.errors.len()),
                (50, 0),
                "{:?}",
                m.errors
            );
        }
        // An item is still held to the limit, as written.
        let long = GOOD_JSON.replace("good", &"g".repeat(1000));
        let m = Manifests::from_json_with(&list("List", &[GOOD_JSON, &long, GOOD_JSON]), &limits);
        assert_eq!(m.ingresses.len(), 2);
        assert_eq!(
            (m.errors[0].item, m.errors[0].limit),
            (Some(1), Some(Limit::DocumentBytes))
        );
    }

    #[test]
    fn a_list_kind_printed_after_the_items_gives_them_their_kind() {
        // `kubectl get --raw` prints `kind` first, `kubectl get -o json` after `items`.
        let item = r#"{"metadata":{"name":"a"},"spec":{"controller":"k8s.io/ingress-nginx"}}"#;
        let after = format!(
            r#"{{"apiVersion":"v1","items":[{item},{INGRESS_JSON}],"kind":"IngressClassList","metadata":{{}}}}"#
        );
        let before = list("IngressClassList", &[item, INGRESS_JSON]);
        for text in [after, before] {
            let m = Manifests::from_json(&text);
            assert_eq!(m.ingress_classes.len(), 1, "{:?}", m.errors);
            assert_eq!(m.ingresses.len(), 1);
            assert!(m.errors.is_empty(), "{:?}", m.errors);
        }
        // In a `List`, an item must say its kind.
        let m = Manifests::from_json(&list("List", &[item]));
        assert_eq!(
            m.errors[0].to_string(),
            "document 0, item 0: missing `kind`"
        );
    }

    #[test]
    fn one_zero_stands_for_every_item_of_a_list() {
        let items = vec![GOOD_JSON; 1000];
        let text = list("List", &items);
        let mut scanner = JsonScanner::new(text.as_bytes(), 0, usize::MAX);
        let mut read = 0;
        while let Some(piece) = scanner.next().unwrap() {
            match piece {
                Piece::Item(_) => read += 1,
                Piece::End(end) => {
                    assert_eq!(
                        end.text,
                        br#"{"apiVersion":"v1","kind":"List","items":[0]}"#
                    );
                    assert_eq!(end.text_len, end.text.len());
                }
                Piece::Start => {}
            }
        }
        assert_eq!(read, 1000);
    }

    #[test]
    fn a_broken_list_reads_none_of_its_items() {
        let broken = [
            // No comma between `items` and the next field.
            format!(r#"{{"kind":"List","items":[{GOOD_JSON},{GOOD_JSON}] "x":1}}"#),
            // An empty item.
            format!(r#"{{"kind":"List","items":[{GOOD_JSON},,{GOOD_JSON}]}}"#),
            format!("[{GOOD_JSON},]"),
            format!(r#"{{"kind":"List","items":[{GOOD_JSON},{GOOD_JSON},]}}"#),
            format!(r#"{{"kind":"List","items":[,{GOOD_JSON}]}}"#),
            // Cut off.
            format!(r#"{{"kind":"List","items":[{GOOD_JSON},{GOOD_JSON}"#),
        ];
        for text in broken {
            let m = Manifests::from_json(&format!(
                "{text}
{INGRESS_JSON}"
            ));
            let errors: Vec<_> = m.errors.iter().map(|e| (e.document, e.item)).collect();
            assert_eq!(errors, [(0, None)], "{text}: {:?}", m.errors);
            // Only the document after it, unless the cut list swallowed it.
            assert!(m.ingresses.iter().all(|i| i.metadata.name == "a"), "{text}");
        }
        // The input limit cuts the list: none of it is read.
        let text = list("List", &[GOOD_JSON; 4]);
        let limits = LoadLimits {
            max_input_bytes: text.len() - 10,
            ..LoadLimits::default()
        };
        let m = Manifests::read(text.as_bytes(), &limits).unwrap();
        assert!(m.ingresses.is_empty());
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert_eq!(m.errors[0].limit, Some(Limit::InputBytes));
    }

    #[test]
    fn an_object_with_an_items_field_is_one_object() {
        let text = r#"{"kind":"Ingress","metadata":{"name":"a"},"items":[{"kind":"Ingress"},7],
            "spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#;
        let m = Manifests::from_json(text);
        assert_eq!(m.ingresses.len(), 1, "{:?}", m.errors);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.ingresses[0].metadata.name, "a");
        // Measured whole, items included.
        let limits = LoadLimits {
            max_object_bytes: text.len() - 1,
            ..LoadLimits::default()
        };
        let m = Manifests::from_json_with(text, &limits);
        assert_eq!(
            m.errors[0].limit,
            Some(Limit::ObjectBytes),
            "{:?}",
            m.errors
        );
    }

    #[test]
    fn list_items_are_held_to_the_depth_limit_one_by_one() {
        let limits = LoadLimits {
            max_depth: 6,
            ..LoadLimits::default()
        };
        // The list object is level 1, `items` 2, an item 3: `x` may nest three more levels.
        let item = |levels: usize| {
            format!(
                r#"{{"kind":"Ingress","metadata":{{"name":"n{levels}"}},"x":{}{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let m = Manifests::from_json_with(&list("List", &[&item(3), &item(4)]), &limits);
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.ingresses[0].metadata.name, "n3");
        assert_eq!(
            (m.errors[0].item, m.errors[0].limit),
            (Some(1), Some(Limit::Depth))
        );
    }

    #[test]
    fn json_syntax_error_keeps_earlier_objects() {
        let m = Manifests::from_json(&format!("{INGRESS_JSON} {{\"kind\": "));
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].document, 1);
    }

    #[test]
    fn json_values_are_delimited_before_parsing() {
        let text = format!(
            "{GOOD_JSON} {{\"kind\": \"Ingress\", \"x\": [1 2]}} \"a string with {{ and [\" 7 {GOOD_JSON}"
        );
        let m = Manifests::from_json(&text);
        assert_eq!(m.ingresses.len(), 2, "{:?}", m.errors);
        let errors: Vec<_> = m.errors.iter().map(|e| (e.document, e.limit)).collect();
        assert_eq!(errors, [(1, None), (2, None), (3, None)]);
        // Escaped quotes and brackets in strings do not end or nest a value.
        let m = Manifests::from_json(
            r#"{"kind":"Ingress","metadata":{"name":"a","annotations":{"x":"\"}]\\"}}}"#,
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.ingresses[0].metadata.annotations["x"], "\"}]\\");
    }
}
