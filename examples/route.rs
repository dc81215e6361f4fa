//! `route`: where does a request go?
//!
//! ```text
//! cargo run --example route -- [--default-backend NS/NAME:PORT]
//!     [--implementation-specific prefix|exact] [--check] FILE...
//! ```
//!
//! Reads Ingress manifests (YAML or JSON) from FILEs and prints diagnostics to stderr, one JSON
//! object per line. With `--check` it stops there and exits 1 if any object is invalid. Otherwise
//! it reads requests from stdin, one JSON object per line (`{"host": "a.example.com", "path":
//! "/x?y=1"}`; a missing or null host is a request without Host), and answers each with one JSON
//! line on stdout: the status, the backend, the Ingress and rule that matched, the fallback taken
//! and the path the backend receives.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use ingress_router::canonical::{self, RequestHost};
use ingress_router::{
    Backend, ImplementationSpecific, Manifests, RouteTable, ServicePort, TableOptions,
};
use serde::{Deserialize, Serialize};

const USAGE: &str = "usage: route [--default-backend NS/NAME:PORT] \
[--implementation-specific prefix|exact] [--check] FILE...";

struct Args {
    options: TableOptions,
    check: bool,
    files: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut options = TableOptions::default();
    let mut check = false;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--default-backend" => {
                let text = value("--default-backend")?;
                let backend: Backend = text.parse().map_err(|e| format!("{e}"))?;
                options.default_backend = Some(backend);
            }
            "--implementation-specific" => {
                options.implementation_specific = match value("--implementation-specific")?.as_str()
                {
                    "prefix" => ImplementationSpecific::Prefix,
                    "exact" => ImplementationSpecific::Exact,
                    other => {
                        return Err(format!(
                            "--implementation-specific: {other:?} is not prefix or exact"
                        ))
                    }
                }
            }
            "--check" => check = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if flag.starts_with("--") => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        return Err(format!("no manifest FILE given\n{USAGE}"));
    }
    Ok(Args {
        options,
        check,
        files,
    })
}

#[derive(Serialize)]
struct Diagnostic<'a> {
    object: String,
    kind: &'a str,
    level: &'a str,
    field: String,
    message: String,
}

fn emit(out: &mut impl Write, diagnostic: &Diagnostic<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, diagnostic)?;
    out.write_all(b"\n")
}

/// Prints every diagnostic; returns whether any object was unreadable or invalid.
fn report(files: &[(String, Manifests)], table: &RouteTable) -> io::Result<bool> {
    let mut err = io::stderr().lock();
    let mut invalid = false;
    for (file, manifests) in files {
        for error in &manifests.errors {
            invalid = true;
            let mut field = format!("documents[{}]", error.document);
            if let Some(item) = error.item {
                field += &format!(".items[{item}]");
            }
            let message = match error.line {
                Some(line) => format!("line {line}: {}", error.message),
                None => error.message.clone(),
            };
            emit(
                &mut err,
                &Diagnostic {
                    object: file.clone(),
                    kind: "Document",
                    level: "error",
                    field,
                    message,
                },
            )?;
        }
    }
    let diagnostics = table.diagnostics();
    for quarantined in &diagnostics.quarantined {
        invalid = true;
        for error in &quarantined.errors {
            emit(
                &mut err,
                &Diagnostic {
                    object: quarantined.object.to_string(),
                    kind: quarantined.object.kind.as_str(),
                    level: "error",
                    field: error.field.clone(),
                    message: error.message(),
                },
            )?;
        }
    }
    for warning in &diagnostics.warnings {
        emit(
            &mut err,
            &Diagnostic {
                object: warning.object.to_string(),
                kind: warning.object.kind.as_str(),
                level: "warning",
                field: warning.field.clone(),
                message: warning.message.clone(),
            },
        )?;
    }
    for conflict in &diagnostics.conflicts {
        for loser in &conflict.losers {
            emit(
                &mut err,
                &Diagnostic {
                    object: loser.ingress.to_string(),
                    kind: loser.ingress.kind.as_str(),
                    level: "conflict",
                    field: loser.field.clone(),
                    message: format!(
                        "{} {:?} on host {:?} is also defined by {}, which takes precedence",
                        conflict.path_type,
                        conflict.path,
                        conflict.host.as_deref().unwrap_or("*"),
                        conflict.winner
                    ),
                },
            )?;
        }
    }
    Ok(invalid)
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    host: Option<String>,
    path: String,
}

/// One answer line. Field order is the output's key order.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Routed {
        status: u16,
        backend: BackendJson<'a>,
        ingress: Option<String>,
        #[serde(rename = "ruleHost")]
        rule_host: Option<&'a str>,
        #[serde(rename = "rulePath")]
        rule_path: Option<&'a str>,
        #[serde(rename = "pathType")]
        path_type: Option<&'a str>,
        fallback: Option<&'a str>,
        #[serde(rename = "forwardPath")]
        forward_path: String,
    },
    Rejected {
        status: u16,
        reason: String,
    },
    NotFound {
        status: u16,
    },
}

#[derive(Serialize)]
enum BackendJson<'a> {
    #[serde(rename = "service")]
    Service {
        namespace: &'a str,
        name: &'a str,
        port: PortJson<'a>,
    },
    #[serde(rename = "resource")]
    Resource {
        #[serde(rename = "apiGroup")]
        api_group: Option<&'a str>,
        kind: &'a str,
        name: &'a str,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum PortJson<'a> {
    Number(u16),
    Name(&'a str),
}

fn backend_json(backend: &Backend) -> BackendJson<'_> {
    match backend {
        Backend::Service(s) => BackendJson::Service {
            namespace: &s.namespace,
            name: &s.name,
            port: match &s.port {
                ServicePort::Number(n) => PortJson::Number(*n),
                ServicePort::Name(name) => PortJson::Name(name),
            },
        },
        Backend::Resource(r) => BackendJson::Resource {
            api_group: r.api_group.as_deref(),
            kind: &r.kind,
            name: &r.name,
        },
    }
}

fn answer<'t>(table: &'t RouteTable, request: &Request) -> Answer<'t> {
    let options = &table.options().canonical;
    let host = match request.host.as_deref() {
        None => Ok(RequestHost::None),
        Some(host) => canonical::canonical_host(host, options),
    };
    let routed = host.and_then(|host| {
        let path = canonical::canonical_path(&request.path, options)?;
        Ok((host, path))
    });
    let (host, path) = match routed {
        Ok(routed) => routed,
        Err(rejection) => {
            return Answer::Rejected {
                status: rejection.status().as_u16(),
                reason: rejection.reason().to_owned(),
            }
        }
    };
    let Some(route) = table.route(host.name(), path.path()) else {
        return Answer::NotFound { status: 404 };
    };
    let rule = route.rule();
    Answer::Routed {
        status: 200,
        backend: backend_json(route.backend()),
        ingress: route.ingress().map(ToString::to_string),
        rule_host: rule.and_then(|r| r.host),
        rule_path: rule.map(|r| r.path),
        path_type: rule.map(|r| r.path_type.as_str()),
        fallback: route.fallback().map(|f| f.as_str()),
        forward_path: path.path_and_query().into_owned(),
    }
}

fn run() -> Result<ExitCode, String> {
    let args = parse_args()?;
    let mut files = Vec::new();
    let mut all = Manifests::default();
    for file in &args.files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        let manifests = Manifests::parse(&text);
        all.ingresses.extend(manifests.ingresses.iter().cloned());
        files.push((file.clone(), manifests));
    }
    let table = RouteTable::build(&all.ingresses, args.options);
    let invalid = report(&files, &table).map_err(|e| e.to_string())?;
    if args.check {
        return Ok(if invalid {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let stdin = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    for line in stdin.lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(&table, &request),
            Err(e) => Answer::Rejected {
                status: 400,
                reason: format!("unreadable request line: {e}"),
            },
        };
        serde_json::to_writer(&mut out, &reply).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
        // Answer each line as it comes, for interactive and piped use alike.
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("route: {message}");
            ExitCode::from(2)
        }
    }
}
