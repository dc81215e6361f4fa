//! Splitting JSON text into its top-level values before any is parsed.

/// The top-level values of a JSON text, each with its nesting depth, found by following
/// strings and brackets only: nothing is parsed, so a value with a syntax error inside ends
/// where its brackets balance and the values after it are found all the same.
pub(super) struct JsonDocuments<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> JsonDocuments<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        JsonDocuments { text, at: 0 }
    }
}

impl<'t> Iterator for JsonDocuments<'t> {
    type Item = (&'t str, usize);

    fn next(&mut self) -> Option<(&'t str, usize)> {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        let start = at;
        let mut depth = 0usize;
        let mut deepest = 0usize;
        match *bytes.get(at)? {
            b'{' | b'[' => {
                let mut in_string = false;
                let mut escaped = false;
                while let Some(&b) = bytes.get(at) {
                    at += 1;
                    if in_string {
                        match b {
                            _ if escaped => escaped = false,
                            b'\\' => escaped = true,
                            b'"' => in_string = false,
                            _ => {}
                        }
                        continue;
                    }
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => {
                            depth += 1;
                            deepest = deepest.max(depth);
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            b'"' => {
                at += 1;
                let mut escaped = false;
                while let Some(&b) = bytes.get(at) {
                    at += 1;
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            _ => {
                // A bare scalar, or a stray character: up to the next delimiter, at least one
                // character.
                at += self.text[at..].chars().next().map_or(1, char::len_utf8);
                while bytes
                    .get(at)
                    .is_some_and(|b| !b.is_ascii_whitespace() && !b"{}[]\",".contains(b))
                {
                    at += 1;
                }
            }
        }
        // Only ASCII delimiters end a value, so `at` is on a character boundary.
        self.at = at;
        Some((&self.text[start..at], deepest))
    }
}

#[cfg(test)]
mod tests {
    use crate::load::fixtures::*;
    use crate::load::Manifests;

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
