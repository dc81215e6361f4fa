//! Hostile manifests: huge documents, deep nesting, alias bombs, huge Ingresses, long hosts and
//! paths, floods of documents. Each must end in time linear in its size with an error that
//! names the limit and the document, and must leave the objects around it loaded and routed.
//!
//! Times are never compared with a wall-clock deadline: each hostile input is timed at two
//! sizes, four times apart, and the larger must take well under the sixteen times a quadratic
//! cost would (best of several runs, so a busy machine does not make a test fail).

#![cfg(feature = "yaml")]

use std::time::{Duration, Instant};

#[path = "common/linear.rs"]
mod linear;

use linear::{assert_linear, exclusive};

use ingress_router::validate_ingress;
use ingress_router::{Limit, LoadLimits, Manifests, RouteTable, TableOptions};

const GOOD_YAML: &str = "kind: Ingress\nmetadata: {name: good, namespace: web}\nspec:\n  rules:\n  - host: good.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: site, port: {number: 80}}}}\n";

const GOOD_JSON: &str = r#"{"kind":"Ingress","metadata":{"name":"good","namespace":"web"},"spec":{"rules":[{"host":"good.example","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"site","port":{"number":80}}}}]}}]}}"#;

/// `hostile` between two good documents, as YAML.
fn yaml_around(hostile: &str) -> String {
    format!(
        "{GOOD_YAML}---\n{hostile}\n---\n{}",
        GOOD_YAML.replace("good", "after")
    )
}

/// `hostile` between two good documents, as a JSON stream.
fn json_around(hostile: &str) -> String {
    format!(
        "{GOOD_JSON}\n{hostile}\n{}",
        GOOD_JSON.replace("good", "after")
    )
}

/// The one error is `limit`'s, on the document in the middle, and both neighbours were read,
/// are valid and route.
fn assert_only_middle_rejected(manifests: &Manifests, limit: Limit) {
    assert_eq!(manifests.errors.len(), 1, "{:#?}", manifests.errors);
    let error = &manifests.errors[0];
    assert_eq!((error.document, error.limit), (1, Some(limit)), "{error}");
    assert!(error.message.contains(limit.name()), "{error}");
    let names: Vec<_> = manifests
        .ingresses
        .iter()
        .map(|i| i.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["good", "after"]);
    let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
    assert!(table.diagnostics().quarantined.is_empty());
    for host in ["good.example", "after.example"] {
        let route = table.route(Some(host), "/x").expect("routed");
        assert_eq!(route.backend().to_string(), "service web/site:80");
    }
}

/// Loading `large` takes time linear in its size, against loading `small`.
fn assert_loads_linearly(what: &str, small: &str, large: &str, load: impl Fn(&str) -> Manifests) {
    assert_linear(what, small, large, 1, |text| drop(load(text)));
}

/// `good.example` and `after.example` route in `table`, built from `large`; parsing and
/// building take time linear in the input, `small` against `large`.
fn assert_neighbours_route_and_build_linearly(
    table: &RouteTable,
    what: &str,
    small: &str,
    large: &str,
) {
    for host in ["good.example", "after.example"] {
        assert!(table.route(Some(host), "/").is_some());
    }
    assert_loads_linearly(what, small, large, |text| {
        let m = Manifests::parse(text);
        drop(RouteTable::build(&m.ingresses, TableOptions::default()));
        m
    });
}

/// An Ingress whose one annotation is `len` bytes long.
fn ingress_with_annotation(len: usize) -> String {
    format!(
        "kind: Ingress\nmetadata:\n  name: huge\n  annotations:\n    note: {}\nspec: {{}}",
        "x".repeat(len)
    )
}

#[test]
fn ten_megabyte_document_is_rejected_before_parsing() {
    let _exclusive = exclusive();
    let huge = ingress_with_annotation(10 << 20);
    let m = Manifests::parse(&yaml_around(&huge));
    assert_only_middle_rejected(&m, Limit::ObjectBytes);
    assert_eq!(m.errors[0].line, Some(9));
    assert!(
        m.errors[0].message.starts_with("the object is 10485"),
        "{}",
        m.errors[0]
    );

    let json = format!(
        r#"{{"kind":"Ingress","metadata":{{"name":"huge","annotations":{{"note":"{}"}}}}}}"#,
        "x".repeat(10 << 20)
    );
    assert_only_middle_rejected(&Manifests::parse(&json_around(&json)), Limit::ObjectBytes);

    // Rejecting it costs a scan of its text, linear in its size; parsing does not start.
    assert_loads_linearly(
        "10 MB YAML document",
        &yaml_around(&ingress_with_annotation(10 << 18)),
        &yaml_around(&huge),
        Manifests::parse,
    );
    let quarter = json.replace(&"x".repeat(10 << 20), &"x".repeat(10 << 18));
    assert_loads_linearly(
        "10 MB JSON document",
        &json_around(&quarter),
        &json_around(&json),
        Manifests::parse,
    );
}

#[test]
fn huge_list_document_is_bounded_by_the_document_limit_in_yaml_only() {
    let _exclusive = exclusive();
    let mut limits = LoadLimits::default();
    limits.max_document_bytes = 1 << 20;
    let items = vec![GOOD_JSON.replace("good", "item"); (2 << 20) / GOOD_JSON.len()];
    // A YAML document is parsed whole, list or not: the document limit is what bounds it.
    let yaml = format!("kind: List\nitems: [{}]", items.join(","));
    let m = Manifests::parse_with(&yaml_around(&yaml), &limits);
    assert_only_middle_rejected(&m, Limit::DocumentBytes);
    // A JSON list is read an item at a time: each item is held to the limit, not the list.
    let json = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    let m = Manifests::parse_with(&json_around(&json), &limits);
    assert!(m.errors.is_empty(), "{:?}", &m.errors[..1]);
    assert_eq!(m.ingresses.len(), items.len() + 2);
}

/// What `kubectl get ingress,service,endpointslice -A -o json` prints for `n` Ingresses with
/// their Services and EndpointSlices, indented as kubectl indents it, made as it is read.
struct KubectlList {
    n: usize,
    next: usize,
    chunk: Vec<u8>,
    at: usize,
}

impl KubectlList {
    fn new(n: usize) -> Self {
        let head = "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n";
        KubectlList {
            n,
            next: 0,
            chunk: head.as_bytes().to_vec(),
            at: 0,
        }
    }

    fn items(i: usize) -> String {
        let ingress = format!(
            r#"{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"ing-{i}","namespace":"ns","annotations":{{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"managedFields":[{{"manager":"kubectl","operation":"Update","fieldsV1":{{"f:spec":{{}}}}}}]}},"spec":{{"rules":[{{"host":"h{i}.example","http":{{"paths":[{{"path":"/","pathType":"Prefix","backend":{{"service":{{"name":"s{i}","port":{{"number":80}}}}}}}}]}}}}]}}}}"#,
            "x".repeat(200)
        );
        let service = format!(
            r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"s{i}","namespace":"ns"}},"spec":{{"ports":[{{"name":"http","port":80,"targetPort":8080}}]}}}}"#
        );
        let slice = format!(
            r#"{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"s{i}-x","namespace":"ns","labels":{{"kubernetes.io/service-name":"s{i}"}}}},"addressType":"IPv4","ports":[{{"name":"http","port":8080}}],"endpoints":[{{"addresses":["10.0.0.1"],"conditions":{{"ready":true}}}}]}}"#
        );
        let pretty = |json: String| {
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            serde_json::to_string_pretty(&value).unwrap()
        };
        [ingress, service, slice].map(pretty).join(",\n")
    }
}

impl std::io::Read for KubectlList {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len() {
            self.at = 0;
            self.chunk = match self.next {
                i if i < self.n => {
                    let comma = if i + 1 < self.n { ",\n" } else { "\n" };
                    (Self::items(i) + comma).into_bytes()
                }
                i if i == self.n => {
                    b"    ],\n    \"kind\": \"List\",\n    \"metadata\": {\"resourceVersion\": \"\"}\n}\n"
                        .to_vec()
                }
                _ => Vec::new(),
            };
            self.next += 1;
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn kubectl_json_list_far_past_the_document_limit_loads_item_by_item() {
    let _exclusive = exclusive();
    // Scaled down from a 100 MB `kubectl get -o json` against the 32 MiB default: a list
    // sixteen times the document limit.
    let n = 4_000;
    let mut limits = LoadLimits::default();
    limits.max_document_bytes = 256 << 10;
    let len = std::io::copy(&mut KubectlList::new(n), &mut std::io::sink()).unwrap();
    assert!(len > 16 * limits.max_document_bytes as u64, "{len}");
    let m = Manifests::read(KubectlList::new(n), &limits).unwrap();
    assert!(m.errors.is_empty(), "{:?}", &m.errors[..1]);
    assert_eq!(
        (m.ingresses.len(), m.services.len(), m.endpoint_slices.len()),
        (n, n, n)
    );
    assert_eq!(m.ingresses[n - 1].metadata.name, format!("ing-{}", n - 1));
    // A list that stops before its end is not read at all.
    limits.max_input_bytes = usize::try_from(len).unwrap() - 20;
    let m = Manifests::read(KubectlList::new(n), &limits).unwrap();
    assert!(m.ingresses.is_empty() && m.services.is_empty());
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].limit, Some(Limit::InputBytes));
}

#[test]
fn deep_yaml_flow_nesting() {
    let _exclusive = exclusive();
    let deep = |n: usize| format!("kind: Ingress\nx: {}", "[".repeat(n));
    let m = Manifests::parse(&yaml_around(&deep(1_000_000)));
    assert_only_middle_rejected(&m, Limit::Depth);
    assert!(
        m.errors[0].message.contains("deeper than 64"),
        "{}",
        m.errors[0]
    );
    assert_loads_linearly(
        "YAML flow nesting",
        &yaml_around(&deep(125_000)),
        &yaml_around(&deep(1_000_000)),
        Manifests::parse,
    );
}

#[test]
fn deep_yaml_block_nesting() {
    let _exclusive = exclusive();
    // Nested block sequences on one line (`- - - x`) and nested block maps by indentation.
    let dashes = |n: usize| format!("kind: Ingress\nx:\n{}y", "- ".repeat(n));
    let m = Manifests::parse(&yaml_around(&dashes(100_000)));
    assert_only_middle_rejected(&m, Limit::Depth);
    let mut indented = String::from("kind: Ingress\nx:\n");
    for depth in 1..200 {
        indented += &" ".repeat(depth);
        indented += "x:\n";
    }
    assert_only_middle_rejected(&Manifests::parse(&yaml_around(&indented)), Limit::Depth);
    assert_loads_linearly(
        "YAML block nesting",
        &yaml_around(&dashes(25_000)),
        &yaml_around(&dashes(100_000)),
        Manifests::parse,
    );
}

#[test]
fn deep_json_nesting() {
    let _exclusive = exclusive();
    let deep = |n: usize| {
        format!(
            r#"{{"kind":"Ingress","x":{}}}"#,
            "[".repeat(n) + &"]".repeat(n)
        )
    };
    let m = Manifests::parse(&json_around(&deep(1_000_000)));
    assert_only_middle_rejected(&m, Limit::Depth);
    // Unbalanced, the deep value runs to the end of the input: the good one before it is read.
    let unbalanced = format!(
        "{GOOD_JSON}\n{{\"kind\":\"Ingress\",\"x\":{}",
        "[".repeat(1_000_000)
    );
    let m = Manifests::parse(&unbalanced);
    assert_eq!(m.ingresses.len(), 1);
    assert_eq!(
        (m.errors[0].document, m.errors[0].limit),
        (1, Some(Limit::Depth))
    );
    assert_loads_linearly(
        "JSON nesting",
        &json_around(&deep(125_000)),
        &json_around(&deep(1_000_000)),
        Manifests::parse,
    );
}

#[test]
fn billion_laughs() {
    let _exclusive = exclusive();
    let bomb = |levels: usize| {
        let mut text = String::from("kind: Ingress\nmetadata: {name: lol}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..levels {
            let p = i - 1;
            let refs = vec![format!("*l{p}"); 10].join(", ");
            text += &format!("l{i}: &l{i} [{refs}]\n");
        }
        text
    };
    let m = Manifests::parse(&yaml_around(&bomb(9)));
    assert_only_middle_rejected(&m, Limit::AliasExpansion);
    assert!(m.errors[0].message.contains("aliases"), "{}", m.errors[0]);
}

#[test]
fn many_aliases_of_one_long_list() {
    let _exclusive = exclusive();
    // Few alias jumps, each repeating the whole list: quadratic without a bound on expansion.
    let bomb = |n: usize| {
        format!(
            "kind: Ingress\nmetadata: {{name: lol}}\nlist: &l [{}]\nrefs: [{}]",
            "lol, ".repeat(n),
            "*l, ".repeat(n)
        )
    };
    let m = Manifests::parse(&yaml_around(&bomb(100_000)));
    assert_only_middle_rejected(&m, Limit::AliasExpansion);
    // Rejecting it takes about as long as reading the same document with every alias written
    // out as a plain scalar of the same length: both are linear in the document's size.
    let plain = bomb(100_000).replace("*l,", "ll,");
    let hostile = bomb(100_000);
    let (mut bomb_time, mut plain_time) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let started = Instant::now();
        drop(Manifests::parse(&hostile));
        bomb_time = bomb_time.min(started.elapsed());
        let started = Instant::now();
        drop(Manifests::parse(&plain));
        plain_time = plain_time.min(started.elapsed());
    }
    assert!(
        bomb_time < plain_time * 4,
        "{bomb_time:?} against {plain_time:?} without aliases"
    );
    assert_loads_linearly(
        "aliases of a long list",
        &yaml_around(&bomb(25_000)),
        &yaml_around(&bomb(100_000)),
        Manifests::parse,
    );
}

/// An Ingress with `rules` rules of `paths` paths each, as JSON.
fn big_ingress(name: &str, rules: usize, paths: usize) -> String {
    let rules: Vec<String> = (0..rules)
        .map(|r| {
            let paths: Vec<String> = (0..paths)
                .map(|p| {
                    format!(
                        r#"{{"path":"/p{p}","pathType":"Exact","backend":{{"service":{{"name":"s","port":{{"number":80}}}}}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"host":"h{r}.example","http":{{"paths":[{}]}}}}"#,
                paths.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"kind":"Ingress","metadata":{{"name":"{name}","namespace":"big"}},"spec":{{"rules":[{}]}}}}"#,
        rules.join(",")
    )
}

#[test]
fn hundred_thousand_rules_in_one_ingress() {
    let _exclusive = exclusive();
    // Host-only rules are small: 100 000 of them fit in the object limit.
    let rules = |n: usize| {
        let rules: Vec<String> = (0..n)
            .map(|r| format!(r#"{{"host":"h{r}.example"}}"#))
            .collect();
        format!(
            r#"{{"kind":"Ingress","metadata":{{"name":"many","namespace":"big"}},"spec":{{"rules":[{}]}}}}"#,
            rules.join(",")
        )
    };
    let many = rules(100_000);
    assert!(many.len() < 3 << 20);
    let m = Manifests::parse(&json_around(&many));
    assert_only_middle_rejected(&m, Limit::Rules);
    assert_eq!(
        m.errors[0].message,
        "Ingress big/many: spec.rules: Too many: 100000: must have at most 10000 items \
         (LoadLimits::max_rules)"
    );
    assert_loads_linearly(
        "100 000 rules",
        &json_around(&rules(25_000)),
        &json_around(&many),
        Manifests::parse,
    );
}

#[test]
fn hundred_thousand_paths_in_one_rule() {
    let _exclusive = exclusive();
    let huge = big_ingress("paths", 1, 100_000);
    // Far over the object limit: rejected before parsing.
    let m = Manifests::parse(&json_around(&huge));
    assert_only_middle_rejected(&m, Limit::ObjectBytes);
    // With the size limits raised, the path limit stops it before it is deserialised.
    let mut limits = LoadLimits::default();
    limits.max_object_bytes = 64 << 20;
    let m = Manifests::parse_with(&json_around(&huge), &limits);
    assert_only_middle_rejected(&m, Limit::Paths);
    assert!(m.errors[0]
        .message
        .starts_with("Ingress big/paths: spec.rules[0].http.paths: Too many: 100000: must have at most 50000 items"),
        "{}", m.errors[0]);
    // And the same spread over rules counts the same.
    let spread = big_ingress("spread", 100, 1_000);
    let m = Manifests::parse_with(&json_around(&spread), &limits);
    assert_only_middle_rejected(&m, Limit::Paths);
    assert!(
        m.errors[0]
            .message
            .contains("spec.rules[50].http.paths: Too many: 100000"),
        "{}",
        m.errors[0]
    );
}

#[test]
fn large_ingress_within_raised_limits_is_read_in_linear_time() {
    let _exclusive = exclusive();
    let mut limits = LoadLimits::default();
    limits.max_object_bytes = 64 << 20;
    limits.max_rules = 100_000;
    let load = |text: &str| {
        let m = Manifests::parse_with(text, &limits);
        assert_eq!(
            (m.ingresses.len(), m.errors.len()),
            (1, 0),
            "{:?}",
            m.errors
        );
        assert!(validate_ingress(&m.ingresses[0]).is_empty());
        m
    };
    assert_loads_linearly(
        "one Ingress, many rules",
        &big_ingress("rules", 5_000, 1),
        &big_ingress("rules", 20_000, 1),
        load,
    );
    // Compiled too, when the paths share a host.
    let build = |text: &str| {
        let m = load(text);
        let table = RouteTable::build(&m.ingresses, TableOptions::default());
        assert!(table.diagnostics().quarantined.is_empty());
        assert!(table.route(Some("h0.example"), "/p1").is_some());
        m
    };
    assert_loads_linearly(
        "one Ingress, many paths",
        &big_ingress("paths", 1, 5_000),
        &big_ingress("paths", 1, 20_000),
        build,
    );
    // And when every rule names a host of its own: each host reads only its own rules.
    let build_hosts = |text: &str| {
        let m = load(text);
        let table = RouteTable::build(&m.ingresses, TableOptions::default());
        assert!(table.route(Some("h1.example"), "/p0").is_some());
        // Replaced by an edit: every host of the old and the new version is compiled again.
        let next = table.update(&m.ingresses, &[m.ingresses[0].object_ref()]);
        assert_eq!(next.rule_count(), table.rule_count());
        m
    };
    assert_loads_linearly(
        "one Ingress, many hosts",
        &big_ingress("hosts", 2_000, 1),
        &big_ingress("hosts", 8_000, 1),
        build_hosts,
    );
}

#[test]
fn very_long_hosts_are_quarantined_by_validation() {
    let _exclusive = exclusive();
    let long_host = |len: usize| {
        format!(
            "kind: Ingress\nmetadata: {{name: long, namespace: big}}\nspec:\n  rules:\n  - host: {}.example\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: s, port: {{number: 80}}}}}}}}",
            "a.".repeat(len / 2)
        )
    };
    let text = yaml_around(&long_host(1 << 20));
    let m = Manifests::parse(&text);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let table = RouteTable::build(&m.ingresses, TableOptions::default());
    let quarantined = &table.diagnostics().quarantined;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].object.name, "long");
    assert_eq!(quarantined[0].errors[0].field, "spec.rules[0].host");
    assert!(
        quarantined[0].errors[0]
            .message()
            .ends_with("must be no more than 253 characters"),
        "{}",
        quarantined[0].errors[0].message().len()
    );
    assert_neighbours_route_and_build_linearly(
        &table,
        "long host",
        &yaml_around(&long_host(1 << 18)),
        &text,
    );
}

#[test]
fn very_long_paths_never_match_and_leave_the_others_alone() {
    let _exclusive = exclusive();
    let long_path = |len: usize| {
        format!(
            "kind: Ingress\nmetadata: {{name: long, namespace: big}}\nspec:\n  rules:\n  - host: long.example\n    http:\n      paths:\n      - {{path: /{}, pathType: Prefix, backend: {{service: {{name: s, port: {{number: 80}}}}}}}}",
            "seg/".repeat(len / 4)
        )
    };
    let text = yaml_around(&long_path(1 << 20));
    let m = Manifests::parse(&text);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let table = RouteTable::build(&m.ingresses, TableOptions::default());
    let warnings = &table.diagnostics().warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.object.name == "long" && w.field == "spec.rules[0].http.paths[0].path"),
        "{warnings:?}"
    );
    assert_neighbours_route_and_build_linearly(
        &table,
        "long path",
        &yaml_around(&long_path(1 << 18)),
        &text,
    );
}

#[test]
fn very_many_documents() {
    let _exclusive = exclusive();
    // Documents of a kind that is skipped, and documents that are each an error.
    let stream =
        |n: usize, document: &str| format!("{GOOD_YAML}{}", format!("---\n{document}\n").repeat(n));
    let m = Manifests::parse(&stream(100_000, "kind: Deployment"));
    assert_eq!(
        (m.ingresses.len(), m.skipped, m.errors.len()),
        (1, 100_000, 0)
    );
    assert_loads_linearly(
        "many documents",
        &stream(25_000, "kind: Deployment"),
        &stream(100_000, "kind: Deployment"),
        Manifests::parse,
    );
    // Past max_objects, one error and nothing more.
    let mut limits = LoadLimits::default();
    limits.max_objects = 1_000;
    let m = Manifests::parse_with(&stream(100_000, "7"), &limits);
    assert_eq!(m.ingresses.len(), 1);
    assert_eq!(m.errors.len(), 1_000);
    let last = m.errors.last().unwrap();
    assert_eq!((last.document, last.limit), (1_000, Some(Limit::Objects)));
    assert!(last.message.contains("LoadLimits::max_objects"), "{last}");
    // Empty documents cost nothing and count for nothing.
    let m = Manifests::parse_with(&format!("{}{GOOD_YAML}", "---\n".repeat(100_000)), &limits);
    assert_eq!((m.ingresses.len(), m.errors.len()), (1, 0));
}

#[test]
fn input_limit_bounds_what_a_reader_gives() {
    let _exclusive = exclusive();
    let mut limits = LoadLimits::default();
    limits.max_input_bytes = 1 << 20;
    // A file that never ends: only the limit is read.
    let head = format!("{GOOD_YAML}---\n");
    let endless = std::io::Read::chain(head.as_bytes(), std::io::repeat(b'x'));
    let m = Manifests::read(endless, &limits).unwrap();
    assert_eq!(m.ingresses.len(), 1);
    assert_eq!(m.errors.len(), 1);
    assert_eq!(
        (m.errors[0].document, m.errors[0].limit),
        (1, Some(Limit::InputBytes))
    );
    assert!(m.errors[0].message.contains("LoadLimits::max_input_bytes"));
    // The same from text.
    let text = format!("{GOOD_YAML}---\n{}", "x".repeat(2 << 20));
    let m = Manifests::parse_with(&text, &limits);
    assert_eq!(m.ingresses.len(), 1);
    assert_eq!(m.errors[0].limit, Some(Limit::InputBytes));
}
