//! Host canonicalisation never panics, and the names it accepts are canonical.
#![no_main]

use ingress_router::canonical::{canonical_host, CanonicalOptions, RequestHost};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let authority = String::from_utf8_lossy(data);
    let opts = CanonicalOptions::default();

    match canonical_host(&authority, &opts) {
        Ok(RequestHost::Name(name)) => {
            let name = name.as_str();
            assert!(!name.is_empty() && name.len() <= 253, "{name:?}");
            assert!(!name.contains(':'), "{name:?}");
            assert!(name
                .split('.')
                .all(|label| !label.is_empty() && label.len() <= 63));
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'-' | b'_' | b'.')),
                "{name:?}"
            );
            assert!(name.parse::<std::net::Ipv4Addr>().is_err(), "{name:?}");
            match canonical_host(name, &opts) {
                Ok(RequestHost::Name(again)) => assert_eq!(again.as_str(), name),
                other => panic!("{name:?} not idempotent: {other:?}"),
            }
        }
        Ok(RequestHost::Ip) => {}
        Ok(RequestHost::None) => panic!("canonical_host returned None"),
        Err(rejection) => assert_eq!(rejection.status().as_u16(), 400),
    }
});
