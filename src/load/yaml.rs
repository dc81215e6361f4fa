//! Splitting a YAML stream into its documents before any is parsed, and the flow nesting
//! pre-check (only with the `yaml` feature).

/// Whether a YAML document opens more than `max` flow collections (`[`, `{`) without closing
/// them.
///
/// The YAML scanner's cost grows with the flow nesting depth for every token, so a document of
/// a hundred thousand `[` takes minutes before any recursion limit rejects it. This linear
/// pre-check counts every bracket, quoted or not: a real manifest never has dozens of unclosed
/// brackets even inside strings, and counting them all leaves nothing to hide behind. (Block
/// collections nest by indentation and cost the scanner nothing extra; their depth is checked
/// while the document is parsed.)
pub(super) fn too_deep(document: &str, max: usize) -> bool {
    let mut depth = 0usize;
    for b in document.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The documents of a YAML stream with the line each starts on (from 1). A line that is `---`
/// (optionally followed by a space and content) starts a document; `...` ends one. Documents
/// holding only comments or blank lines carry no object and are left out. Lazy, so that a
/// stream of a million empty documents costs no memory.
pub(super) struct YamlDocuments<'t> {
    text: &'t str,
    /// Where the next line starts.
    offset: usize,
    /// The number of the next line, from 0.
    number: usize,
    /// Where the current document starts, and its line (from 1).
    start: usize,
    start_line: usize,
    done: bool,
}

impl<'t> YamlDocuments<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        YamlDocuments {
            text,
            offset: 0,
            number: 0,
            start: 0,
            start_line: 1,
            done: false,
        }
    }
}

impl<'t> Iterator for YamlDocuments<'t> {
    type Item = (usize, &'t str);

    fn next(&mut self) -> Option<(usize, &'t str)> {
        let text = self.text;
        while !self.done {
            let rest = &text[self.offset..];
            if rest.is_empty() {
                self.done = true;
                let document = &text[self.start.min(text.len())..];
                if has_content(document) {
                    return Some((self.start_line, document));
                }
                break;
            }
            let line = &rest[..rest.find('\n').map_or(rest.len(), |i| i + 1)];
            let bare = line.trim_end_matches(['\n', '\r']);
            let marker = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
            let end = bare == "...";
            let offset = self.offset;
            self.offset += line.len();
            self.number += 1;
            if marker || end {
                let document = &text[self.start.min(offset)..offset];
                let start_line = self.start_line;
                // Content after `--- ` on the marker line belongs to the new document.
                self.start = if marker { offset + 3 } else { self.offset };
                self.start_line = self.number;
                if has_content(document) {
                    return Some((start_line, document));
                }
            }
        }
        None
    }
}

/// Whether a YAML document has a line that is neither blank nor a comment.
fn has_content(document: &str) -> bool {
    document
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::fixtures::*;
    use crate::load::{LoadLimits, Manifests};

    #[test]
    fn yaml_stream_with_broken_document_in_the_middle() {
        let text = "# leading comment\n---\nkind: Ingress\nmetadata:\n  name: a\nspec: {}\n---\nkind: Ingress\nmetadata: {name: [\n---\n--- \n...\nkind: IngressClass\nmetadata:\n  name: c\n";
        let m = Manifests::from_yaml(text);
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.ingress_classes.len(), 1);
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert_eq!((m.errors[0].document, m.errors[0].line), (1, Some(7)));
        assert!(m.errors[0].to_string().starts_with("document 1 (line 7): "));
    }

    #[test]
    fn yaml_list_and_inline_document_start() {
        let text = "--- {kind: List, items: [{kind: Ingress, metadata: {name: a}}, {kind: Pod}]}\n";
        let m = Manifests::from_yaml(text);
        assert_eq!((m.ingresses.len(), m.skipped), (1, 1));
        assert!(m.errors.is_empty(), "{:?}", m.errors);
    }

    #[test]
    fn many_empty_yaml_documents_are_skipped_lazily() {
        let text = format!(
            "{}{GOOD_YAML}---\n# only a comment\n...\n",
            "---\n".repeat(100_000)
        );
        let limits = LoadLimits {
            max_objects: 1,
            ..LoadLimits::default()
        };
        let m = Manifests::from_yaml_with(&text, &limits);
        assert_eq!(m.ingresses.len(), 1);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(YamlDocuments::new(&text).count(), 1);
    }
}
