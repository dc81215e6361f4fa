use super::*;

#[test]
fn segments_split_as_the_trie_expects() {
    fn collect(p: &str) -> (Vec<&str>, bool) {
        let (s, t) = segments(p);
        (s.collect(), t)
    }
    assert_eq!(collect("/"), (vec![], false));
    assert_eq!(collect("/a"), (vec!["a"], false));
    assert_eq!(collect("/a/"), (vec!["a"], true));
    assert_eq!(collect("/a/b"), (vec!["a", "b"], false));
    assert_eq!(collect("//"), (vec![""], true));
    assert_eq!(collect("/a//"), (vec!["a", ""], true));
}

#[test]
fn slashes_are_found_where_a_byte_scan_finds_them() {
    // Bytes around `/` (0x2f) in value and in the eight-bytes-at-a-time arithmetic: its
    // neighbours, the same low bits with the high bit set, zero, and the carries around it.
    let alphabet = [
        b'/', b'.', b'0', b'a', 0xaf, 0x5f, 0x0f, 0x00, 0x01, 0x7f, 0x80, 0xff,
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for len in 0..40 {
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            let expected = bytes.iter().position(|&b| b == b'/');
            assert_eq!(slash(&bytes), expected, "{bytes:x?}");
        }
    }
}

#[test]
fn identical_rules_conflict_even_when_a_trailing_slash_rule_shadows_them() {
    let manifests = crate::Manifests::from_json(
        r#"[
        {"kind":"Ingress","metadata":{"name":"old","namespace":"a","creationTimestamp":"2024-01-01T00:00:00Z"},
         "spec":{"rules":[{"host":"x.com","http":{"paths":[
           {"path":"/foo","pathType":"Prefix","backend":{"service":{"name":"s1","port":{"number":80}}}}]}}]}},
        {"kind":"Ingress","metadata":{"name":"new","namespace":"b","creationTimestamp":"2024-02-01T00:00:00Z"},
         "spec":{"rules":[{"host":"x.com","http":{"paths":[
           {"path":"/foo","pathType":"Prefix","backend":{"service":{"name":"s3","port":{"number":80}}}},
           {"path":"/foo/","pathType":"Prefix","backend":{"service":{"name":"s4","port":{"number":80}}}}]}}]}}
        ]"#,
    );
    let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
    let route = table.route(Some("x.com"), "/foo").unwrap();
    assert_eq!(route.rule().unwrap().path, "/foo/");

    let diagnostics = table.diagnostics();
    assert_eq!(diagnostics.conflicts.len(), 1, "{diagnostics:?}");
    let conflict = &diagnostics.conflicts[0];
    assert_eq!(
        (
            conflict.path.as_str(),
            conflict.winner.ingress.name.as_str()
        ),
        ("/foo", "old")
    );
    assert_eq!(conflict.losers.len(), 1);
    assert_eq!(conflict.losers[0].ingress.name, "new");
    // Only the group's winner is "never selected"; its loser is already in the conflict.
    assert_eq!(diagnostics.warnings.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics.warnings[0].object.name, "old");
    assert!(diagnostics.warnings[0].message.contains("never selected"));
}

#[test]
fn route_request_canonicalises_as_canonicalize_request() {
    use http::{Request, Version};
    let table = RouteTable::build(&[], TableOptions::default());
    let options = CanonicalOptions::default();
    let cases: &[(Version, &str, &[&str])] = &[
        (Version::HTTP_11, "/a", &["example.com"]),
        (Version::HTTP_11, "/a/../b", &["Example.COM:8080"]),
        (Version::HTTP_11, "/", &["example.com."]),
        (Version::HTTP_11, "/", &["10.0.0.1:80"]),
        (Version::HTTP_11, "/", &["[::1]"]),
        (Version::HTTP_11, "/", &["a.com", "b.com"]),
        (Version::HTTP_11, "/", &[]),
        (Version::HTTP_10, "/", &[]),
        (Version::HTTP_11, "/", &["bad host"]),
        (Version::HTTP_11, "/", &["example.com:99999"]),
        (Version::HTTP_11, "http://a.com/x", &["b.com"]),
        (Version::HTTP_2, "http://a.com/x", &["b.com"]),
        (Version::HTTP_2, "http://a.com/x", &["A.com:80"]),
        (Version::HTTP_11, "/%2e%2E/x", &["example.com"]),
        (Version::HTTP_11, "/a%2Fb", &["example.com"]),
    ];
    for &(version, uri, hosts) in cases {
        let mut builder = Request::builder().version(version).uri(uri);
        for &host in hosts {
            builder = builder.header(http::header::HOST, host);
        }
        let request = builder.body(()).unwrap();
        let expected = canonical::canonicalize_request(&request, &options)
            .map(|c| (c.host, c.path.path().to_owned()));
        let routed = table
            .route_request(&request)
            .map(|r| (r.host, r.path.path().to_owned()));
        assert_eq!(routed, expected, "{version:?} {uri} {hosts:?}");
    }
}

/// Hosts of every shape a table may hold: plain, nested, numeric-looking, and one that is
/// not its own canonical name (all-numeric labels are left to the full host parser).
const TRUSTED_HOSTS: [&str; 9] = [
    "x.com",
    "a-b.x.com",
    "123",
    "0-0.0",
    "1-2.3",
    "*.x.com",
    "*.0-0.0",
    "*.3",
    "*.b.c",
];

fn trusted_hosts_table(canonical: CanonicalOptions) -> RouteTable {
    let ingresses: Vec<String> = TRUSTED_HOSTS
        .iter()
        .enumerate()
        .map(|(i, host)| {
            format!(
                r#"{{"kind":"Ingress","metadata":{{"name":"i{i}","namespace":"n","creationTimestamp":"2024-01-01T00:00:00Z"}},
                "spec":{{"rules":[{{"host":"{host}","http":{{"paths":[
                  {{"path":"/a","pathType":"Prefix","backend":{{"service":{{"name":"s{i}","port":{{"number":80}}}}}}}}]}}}}]}}}}"#
            )
        })
        .collect();
    let manifests = crate::Manifests::from_json(&format!("[{}]", ingresses.join(",")));
    assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
    let options = TableOptions {
        canonical,
        ..TableOptions::default()
    };
    RouteTable::build(&manifests.ingresses, options)
}

/// `route_request` answers what canonicalising the request and routing the result does,
/// whether or not it took the unchecked path for a host of the table.
fn assert_route_request_is_canonical_routing(table: &RouteTable, hosts: &[&str], target: &str) {
    use http::Request;
    let mut builder = Request::builder().uri(target);
    for &host in hosts {
        builder = builder.header(http::header::HOST, host);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let routed = table.route_request(&request).map(|r| {
        let route = r
            .route
            .map(|m| (m.backend().clone(), m.rule().map(|r| r.path)));
        (r.host, r.path.path().to_owned(), route)
    });
    let expected = canonical::canonicalize_request(&request, &table.options.canonical).map(|c| {
        let route = table
            .route(c.host.name(), c.path.path())
            .map(|m| (m.backend().clone(), m.rule().map(|r| r.path)));
        (c.host, c.path.path().to_owned(), route)
    });
    assert_eq!(routed, expected, "{hosts:?} {target:?}");
}

#[test]
fn hosts_of_the_table_are_routed_unchecked_only_when_canonical() {
    assert!(canonical::is_canonical_name("x.com"));
    assert!(canonical::is_canonical_name("a-b.x.com"));
    assert!(!canonical::is_canonical_name("123"));
    assert!(!canonical::is_canonical_name("X.com"));
    let table = trusted_hosts_table(CanonicalOptions::default());
    assert_eq!(table.rule_count(), TRUSTED_HOSTS.len());
    for host in [
        "x.com",
        "X.COM",
        "x.com.",
        "x.com:8080",
        "x.com.:1",
        "x.com:",
        "x.com:65536",
        "x.com:+1",
        "x.com..",
        ".x.com",
        "x.com:80:80",
        "a-b.x.com:443",
        "123",
        "123:80",
        "0-0.0",
        "1-2.3.",
        "[::1]:80",
        "x.com:99999",
        "y.x.com",
        "Y.x.com",
        "y.X.com",
        "y_-9.x.com:80",
        "y..x.com",
        "a.b.x.com",
        "7.3",
        "1.2.3",
        "a.3",
        "a.b.c",
        "-.b.c",
        "1-2.0-0.0",
        "1.0-0.0",
    ] {
        assert_route_request_is_canonical_routing(&table, &[host], "/a/b");
        assert_route_request_is_canonical_routing(&table, &[host], "/a/../a%2Fb");
    }
    assert_route_request_is_canonical_routing(&table, &["x.com", "x.com"], "/a");
    assert_route_request_is_canonical_routing(&table, &["y.com"], "http://x.com/a");
    let short = trusted_hosts_table(CanonicalOptions {
        max_host_len: 4,
        ..CanonicalOptions::default()
    });
    for host in ["x.com", "x.com.", "123", "x.co"] {
        assert_route_request_is_canonical_routing(&short, &[host], "/a");
    }
}

proptest::proptest! {
    #[test]
    fn route_request_is_canonical_routing_on_random_hosts(
        host in proptest::prop_oneof![
            "(x|X|a-b\\.x|123|0-0|1-2)(\\.(com|COM|0|3))?\\.{0,2}(:[0-9+]{0,6})?",
            "([a-zA-Z0-9_\\-]{0,3}\\.)?([a-z0-9_\\-]{0,3}\\.){0,2}(x\\.com|0-0\\.0|3|b\\.c|B\\.c)\\.?(:[0-9]{1,2})?",
            "[a-bxX0-9.:\\-\\[\\]_ ]{0,12}",
        ],
        target in "/(a|A|\\.\\.|%41|%2F)?(/[a.]{0,2}){0,2}",
        max_host_len in proptest::prop_oneof![proptest::strategy::Just(253usize), 0usize..8],
    ) {
        let table = trusted_hosts_table(CanonicalOptions {
            max_host_len,
            ..CanonicalOptions::default()
        });
        assert_route_request_is_canonical_routing(&table, &[&host], &target);
    }
}

#[test]
fn tables_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<RouteTable>();
    shareable::<Diagnostics>();
}

#[test]
fn a_table_grown_one_ingress_at_a_time_equals_a_full_build() {
    let ingresses: Vec<Ingress> = (0..600)
        .map(|i| {
            let json = format!(
                r#"{{"kind":"Ingress","metadata":{{"name":"i{i}","namespace":"n{}"}},
                "spec":{{"rules":[{{"host":"h{i}.example.com","http":{{"paths":[
                  {{"path":"/","pathType":"Prefix","backend":{{"service":{{"name":"s","port":{{"number":80}}}}}}}}]}}}},
                  {{"host":"*.w{}.example.com","http":{{"paths":[
                  {{"path":"/a","pathType":"Exact","backend":{{"service":{{"name":"w","port":{{"number":80}}}}}}}}]}}}}]}}}}"#,
                i % 7,
                i % 50
            );
            serde_json::from_str(&json).unwrap()
        })
        .collect();
    let mut table = RouteTable::build(&[], TableOptions::default());
    for (i, ingress) in ingresses.iter().enumerate() {
        table = table.update(&ingresses[..=i], &[ingress.object_ref()]);
    }
    let full = RouteTable::build(&ingresses, TableOptions::default());
    assert!(table.hosts.exact_shards() > 1);
    assert_eq!(table.diagnostics(), full.diagnostics());
    assert_eq!(table.ingresses(), full.ingresses());
    assert_eq!(table.rule_count(), full.rule_count());
    for i in 0..600 {
        let host = format!("h{i}.example.com");
        let wild = format!("x.w{}.example.com", i % 50);
        for (host, path) in [(host.as_str(), "/x"), (wild.as_str(), "/a")] {
            let (a, b) = (table.route(Some(host), path), full.route(Some(host), path));
            assert_eq!(
                a.map(|m| m.backend().clone()),
                b.map(|m| m.backend().clone())
            );
            assert_eq!(
                a.and_then(|m| m.ingress().cloned()),
                b.and_then(|m| m.ingress().cloned())
            );
        }
    }
}

/// Segments alike in their length or their first eight bytes.
const LOOKALIKE_SEGMENTS: [&str; 7] = [
    "",
    "a",
    "abcdefgh",
    "abcdefghi",
    "abcdefghj",
    "abcdefgh\u{e9}",
    "b\0",
];
/// Segments none of [`LOOKALIKE_SEGMENTS`] is, though each is like some of them.
const ABSENT_SEGMENTS: [&str; 5] = ["b", "abcdefg", "abcdefghij", "abcdefgha", "\0"];

#[test]
fn compiled_child_lists_tell_segments_apart_by_length_head_and_tail() {
    let segments = LOOKALIKE_SEGMENTS;
    let mut tails = Vec::new();
    let list: Vec<Child> = segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let node = Node {
                exact: Winner::new(Some(i as Id)),
                ..Node::default()
            };
            Child::new(segment, node, &mut tails)
        })
        .collect();
    for (i, segment) in segments.iter().enumerate() {
        let found = Child::find(&list, &tails, segment).and_then(|node| node.exact.get());
        assert_eq!(found, Some(i as Id), "{segment:?}");
    }
    for absent in ABSENT_SEGMENTS {
        assert!(Child::find(&list, &tails, absent).is_none(), "{absent:?}");
    }
}

#[test]
fn children_switch_to_a_map_and_stay_findable() {
    let wide = FEW_CHILDREN as u32 + 4;
    let mut children = Children::default();
    for i in 0..wide {
        children.insert(&format!("s{i}"), i);
    }
    assert!(matches!(children, Children::Many(_)));
    for i in 0..wide {
        assert_eq!(children.get(&format!("s{i}")), Some(i));
    }
    assert_eq!(children.get(&format!("s{wide}")), None);

    // In the short list: segments alike in their first eight bytes or their length.
    let mut children = Children::default();
    let segments = LOOKALIKE_SEGMENTS;
    for (i, segment) in segments.iter().enumerate() {
        children.insert(segment, i as Id);
    }
    assert!(matches!(children, Children::Few(_)));
    for (i, segment) in segments.iter().enumerate() {
        assert_eq!(children.get(segment), Some(i as Id), "{segment:?}");
    }
    for absent in ABSENT_SEGMENTS {
        assert_eq!(children.get(absent), None, "{absent:?}");
    }
    // Moving to a map keeps every segment whole.
    for i in 0..FEW_CHILDREN as u32 {
        children.insert(&format!("long-segment-{i}"), 100 + i);
    }
    assert!(matches!(children, Children::Many(_)));
    for (i, segment) in segments.iter().enumerate() {
        assert_eq!(children.get(segment), Some(i as Id), "{segment:?}");
    }
    assert_eq!(children.get("long-segment-7"), Some(107));
}

/// Wide nodes, compiled into hashed runs, at the root and below it, of one to a few hundred
/// children: every child is found with its rule, lookalikes of every kind are told apart, and
/// absent segments fall back to the rule of the node above.
#[test]
fn wide_nodes_find_every_child_and_nothing_else() {
    for wide in [FEW_CHILDREN - 1, FEW_CHILDREN, FEW_CHILDREN + 1, 40, 300] {
        // Those that a canonical path can hold as they are.
        let plain = |s: &&&str| s.bytes().all(|b| b.is_ascii_graphic());
        let mut segments: Vec<String> = LOOKALIKE_SEGMENTS
            .iter()
            .filter(plain)
            .map(|s| s.to_string())
            .collect();
        segments.extend((segments.len()..wide).map(|i| format!("segment-{i}")));
        let mut paths = vec![r#"{"path":"/","pathType":"Prefix","backend":{"service":{"name":"root","port":{"number":80}}}}"#.to_owned()];
        paths.push(r#"{"path":"/w","pathType":"Prefix","backend":{"service":{"name":"w","port":{"number":80}}}}"#.to_owned());
        for (i, segment) in segments.iter().enumerate() {
            for parent in ["", "/w"] {
                paths.push(format!(
                    r#"{{"path":"{parent}/{segment}","pathType":"Exact","backend":{{"service":{{"name":"s{i}","port":{{"number":80}}}}}}}}"#
                ));
            }
        }
        let json = format!(
            r#"[{{"kind":"Ingress","metadata":{{"name":"wide","namespace":"a"}},
               "spec":{{"rules":[{{"host":"x.com","http":{{"paths":[{}]}}}}]}}}}]"#,
            paths.join(",")
        );
        let manifests = crate::Manifests::from_json(&json);
        assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
        let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
        let service = |host: &str, path: &str| {
            let route = table.route(Some(host), path).expect("a rule or the root");
            route.backend.to_string()
        };
        for (i, segment) in segments.iter().enumerate() {
            for parent in ["", "/w"] {
                let path = format!("{parent}/{segment}");
                assert!(
                    service("x.com", &path).contains(&format!("/s{i}:")),
                    "{wide}: {path:?}"
                );
            }
        }
        let absent = ABSENT_SEGMENTS.iter().filter(plain).map(|s| s.to_string());
        for absent in absent.chain([format!("segment-{wide}")]) {
            assert!(
                service("x.com", &format!("/{absent}")).contains("/root:"),
                "{wide}: {absent:?}"
            );
            assert!(
                service("x.com", &format!("/w/{absent}")).contains("/w:"),
                "{wide}: {absent:?}"
            );
        }
    }
}
