//! Path canonicalisation never panics, and what it accepts is canonical.
#![no_main]

use ingress_router::canonical::{canonical_path, CanonicalOptions, PathMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let target = String::from_utf8_lossy(data);
    let target = target.as_ref();

    let normalize = CanonicalOptions::default();
    let strict = CanonicalOptions {
        mode: PathMode::Strict,
        ..CanonicalOptions::default()
    };
    let raw = CanonicalOptions {
        mode: PathMode::Raw,
        ..CanonicalOptions::default()
    };
    let received = target.split(['?', '#']).next().unwrap_or("");

    let normalized = canonical_path(target, &normalize);
    if let Ok(p) = &normalized {
        let path = p.path();
        assert!(path.starts_with('/'), "{path:?}");
        assert!(!path.contains("//"), "{path:?}");
        assert!(
            path.split('/').all(|seg| seg != "." && seg != ".."),
            "{path:?}"
        );
        let upper = path.to_ascii_uppercase();
        assert!(!upper.contains("%2F") && !upper.contains("%5C"), "{path:?}");
        assert!(!path.contains('\\'), "{path:?}");
        assert!(path.bytes().all(|b| (0x21..0x7f).contains(&b)), "{path:?}");
        assert!(!path.contains('?') && !path.contains('#'), "{path:?}");
        assert!(path.len() <= received.len().max(1), "{path:?}");
        assert!(path.matches('/').count() <= normalize.max_segments);
        assert_eq!(p.is_modified(), path != received);
        match p.query() {
            Some(query) => assert_eq!(p.path_and_query(), format!("{path}?{query}")),
            None => assert_eq!(p.path_and_query(), path),
        }

        let again = canonical_path(path, &normalize).expect("canonical path is accepted");
        assert_eq!(again.path(), path);
        assert!(!again.is_modified(), "{path:?}");
        let again = canonical_path(path, &strict).expect("strict accepts canonical paths");
        assert_eq!(again.path(), path);
    }

    // Strict accepts exactly the paths that normalising leaves alone.
    match (&normalized, canonical_path(target, &strict)) {
        (Ok(n), Ok(s)) => {
            assert_eq!(n, &s);
            assert!(!s.is_modified() || received.is_empty());
        }
        (Ok(n), Err(_)) => assert!(n.is_modified()),
        (Err(_), Ok(s)) => panic!("strict accepted {:?} but normalize did not", s.path()),
        (Err(_), Err(_)) => {}
    }

    if let Ok(p) = canonical_path(target, &raw) {
        let expected = if received.is_empty() { "/" } else { received };
        assert_eq!(p.path(), expected);
        assert!(p.path().bytes().all(|b| (0x21..0x7f).contains(&b)));
    }
});
