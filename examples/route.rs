//! `route`: where does a request go?
//!
//! ```text
//! cargo run --example route -- [--default-backend NS/NAME:PORT]
//!     [--implementation-specific prefix|exact] [--controller NAME [--watch-without-class]
//!     [--class-annotation VALUE]...] [--check | --explain] FILE...
//! cargo run --features nginx --example route -- --lint [--configmap NS/NAME]
//!     [--annotations-prefix PREFIX] FILE...
//! ```
//!
//! `--lint` (feature `nginx`) is the first step of a migration off ingress-nginx: for the
//! Ingresses of `kubectl get ingress -A -o yaml` (and the controller ConfigMap, if one of the
//! FILEs holds it: `kubectl get configmap -n ingress-nginx ingress-nginx-controller -o yaml`), it
//! prints one JSON line per Ingress: whether it would be served, each annotation under the
//! prefix with its verdict (`honoured`, `unsupported`, `invalid` with the reason, `refused` for
//! snippets and unenforced protections), and the ingress-nginx behaviours that apply to it
//! (`quirks`, each saying whether it is reproduced).
//!
//! Reads Ingress and IngressClass manifests (YAML or JSON) from FILEs and prints diagnostics to
//! stderr, one JSON object per line. With `--controller` only the Ingresses that controller owns
//! (by IngressClass, legacy annotation, default class) are routed; without it every Ingress is.
//! `--explain` prints, instead of routing, one JSON line per Ingress saying which controller
//! serves it through which class and why (without `--controller`: every controller the
//! IngressClasses name). With `--check` it stops after the diagnostics and exits 1 if any object
//! is invalid. Otherwise
//! it reads requests from stdin, one JSON object per line (`{"host": "a.example.com", "path":
//! "/x?y=1"}`; a missing or null host is a request without Host), and answers each with one JSON
//! line on stdout: the status, the backend, the Ingress and rule that matched, the fallback taken
//! and the path the backend receives.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use ingress_router::{
    canonical_host, canonical_path, validate_ingress, validate_ingress_class, Backend, Controller,
    Dispatch, Dispatcher, ImplementationSpecific, Ingress, IngressClass, Manifests, RequestHost,
    RouteTable, ServicePort, Snapshot, TableOptions, ValidationError,
};
use serde::{Deserialize, Serialize};

const USAGE: &str = "usage: route [--default-backend NS/NAME:PORT] \
[--implementation-specific prefix|exact] [--controller NAME [--watch-without-class] \
[--class-annotation VALUE]...] [--check | --explain | --lint [--configmap NS/NAME] \
[--annotations-prefix PREFIX]] FILE...";

struct Args {
    options: TableOptions,
    controller: Option<String>,
    watch_without_class: bool,
    class_annotations: Vec<String>,
    check: bool,
    explain: bool,
    /// `--lint`, with the ConfigMap and the prefix.
    lint: Option<(Option<String>, Option<String>)>,
    files: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut options = TableOptions::default();
    let mut check = false;
    let mut explain = false;
    let mut controller = None;
    let mut watch_without_class = false;
    let mut class_annotations = Vec::new();
    let mut files = Vec::new();
    let mut lint = false;
    let mut configmap = None;
    let mut prefix = None;
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
            "--controller" => controller = Some(value("--controller")?),
            "--watch-without-class" => watch_without_class = true,
            "--class-annotation" => class_annotations.push(value("--class-annotation")?),
            "--explain" => explain = true,
            "--check" => check = true,
            "--lint" => lint = true,
            "--configmap" => configmap = Some(value("--configmap")?),
            "--annotations-prefix" => prefix = Some(value("--annotations-prefix")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if flag.starts_with("--") => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        return Err(format!("no manifest FILE given\n{USAGE}"));
    }
    if controller.is_none() && (watch_without_class || !class_annotations.is_empty()) {
        return Err(format!(
            "--watch-without-class and --class-annotation need --controller\n{USAGE}"
        ));
    }
    if usize::from(check) + usize::from(explain) + usize::from(lint) > 1 {
        return Err(format!(
            "--check, --explain and --lint exclude each other\n{USAGE}"
        ));
    }
    if !lint && (configmap.is_some() || prefix.is_some()) {
        return Err(format!(
            "--configmap and --annotations-prefix need --lint\n{USAGE}"
        ));
    }
    Ok(Args {
        options,
        controller,
        watch_without_class,
        class_annotations,
        check,
        explain,
        lint: lint.then_some((configmap, prefix)),
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

/// An invalid IngressClass: what the apiserver would say about it.
struct InvalidClass {
    errors: Vec<ValidationError>,
}

/// Prints every diagnostic; returns whether any object was unreadable or invalid.
///
/// `unrouted` are the Ingresses the snapshot leaves out because another controller owns them.
fn report(
    files: &[(String, Manifests)],
    snapshot: &Snapshot,
    quarantined_classes: &[InvalidClass],
    unrouted: &[&Ingress],
) -> io::Result<bool> {
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
    // The routes' findings and the TLS names' (input warnings, then TLS, then per host).
    let diagnostics = snapshot.diagnostics();
    let class_errors = quarantined_classes.iter().flat_map(|q| &q.errors);
    let ingress_errors = diagnostics.quarantined.iter().flat_map(|q| &q.errors);
    let unrouted_errors: Vec<ValidationError> = unrouted
        .iter()
        .flat_map(|ingress| validate_ingress(ingress))
        .collect();
    for error in class_errors.chain(ingress_errors).chain(&unrouted_errors) {
        invalid = true;
        emit(
            &mut err,
            &Diagnostic {
                object: error.object.to_string(),
                kind: error.object.kind.as_str(),
                level: "error",
                field: error.field.clone(),
                message: error.message(),
            },
        )?;
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
        Some(host) => canonical_host(host, options),
    };
    let routed = host.and_then(|host| {
        let path = canonical_path(&request.path, options)?;
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

#[derive(Serialize)]
struct Explanation {
    object: String,
    controller: Option<String>,
    class: Option<String>,
    reason: String,
}

fn explain(dispatch: &Dispatch) -> Result<(), String> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    for decision in &dispatch.decisions {
        let line = Explanation {
            object: decision.ingress.to_string(),
            controller: decision.controller.clone(),
            class: decision.class.clone(),
            reason: decision.to_string(),
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// `--lint`: the migration report, one JSON line per Ingress.
#[cfg(feature = "nginx")]
fn lint(
    ingresses: &[Ingress],
    maps: &[&ingress_router::model::ConfigMap],
    configmap: Option<&str>,
    prefix: Option<&str>,
) -> Result<(), String> {
    use ingress_router::{NginxAnnotations, NginxConfig};
    let wanted = configmap.unwrap_or("ingress-nginx/ingress-nginx-controller");
    let map = maps
        .iter()
        .find(|m| format!("{}/{}", m.metadata.namespace(), m.metadata.name) == wanted);
    if configmap.is_some() && map.is_none() {
        return Err(format!(
            "--configmap {wanted}: no such ConfigMap in the FILEs"
        ));
    }
    let (config, problems) = map.map_or_else(
        || (NginxConfig::default(), Vec::new()),
        |m| NginxConfig::from_data(&m.data),
    );
    for problem in problems {
        eprintln!(
            "{}",
            serde_json::json!({ "configmap": wanted, "problem": problem })
        );
    }
    let mut nginx = NginxAnnotations::new(config);
    if let Some(prefix) = prefix {
        nginx = nginx.with_prefix(prefix);
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for review in nginx.review(ingresses) {
        let annotations: Vec<serde_json::Value> = review
            .annotations
            .iter()
            .map(|a| {
                let mut line = serde_json::json!({
                    "name": a.annotation,
                    "verdict": a.verdict.as_str(),
                });
                if let Some(reason) = a.verdict.reason() {
                    line["reason"] = reason.into();
                }
                line
            })
            .collect();
        let quirks: Vec<serde_json::Value> = review
            .quirks
            .iter()
            .map(|q| {
                serde_json::json!({
                    "name": q.name,
                    "reproduced": q.reproduced,
                    "detail": q.detail,
                })
            })
            .collect();
        let line = serde_json::json!({
            "ingress": review.ingress.to_string(),
            "served": review.served,
            "annotations": annotations,
            "quirks": quirks,
        });
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(not(feature = "nginx"))]
fn lint(
    _: &[Ingress],
    _: &[&ingress_router::model::ConfigMap],
    _: Option<&str>,
    _: Option<&str>,
) -> Result<(), String> {
    Err("--lint needs the `nginx` feature: cargo run --features nginx --example route".into())
}

/// The controllers to dispatch for: the one asked for, or with `--explain` alone every
/// controller the IngressClasses name.
fn controllers(args: &Args, classes: &[IngressClass]) -> Result<Vec<Controller>, String> {
    if let Some(name) = &args.controller {
        let controller = args.class_annotations.iter().fold(
            Controller::new(name.clone())
                .watch_without_class(args.watch_without_class)
                .table_options(args.options.clone()),
            |c, value| c.class_annotation(value.clone()),
        );
        return Ok(vec![controller]);
    }
    let mut names: Vec<&str> = classes.iter().map(|c| c.spec.controller.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Err("--explain needs --controller NAME or IngressClasses in the FILEs".into());
    }
    Ok(names
        .into_iter()
        .map(|n| Controller::new(n).table_options(args.options.clone()))
        .collect())
}

fn run() -> Result<ExitCode, String> {
    let args = parse_args()?;
    let mut files = Vec::new();
    for file in &args.files {
        // Within the loader's default limits: a runaway file is cut, not read whole.
        let read = std::fs::File::open(file)
            .and_then(|f| Manifests::read(f, &ingress_router::LoadLimits::default()))
            .map_err(|e| format!("{file}: {e}"))?;
        files.push((file.clone(), read));
    }
    let ingresses: Vec<Ingress> = files
        .iter()
        .flat_map(|(_, m)| m.ingresses.iter().cloned())
        .collect();
    let classes: Vec<IngressClass> = files
        .iter()
        .flat_map(|(_, m)| m.ingress_classes.iter().cloned())
        .collect();
    let dispatch = |controllers| {
        Dispatcher::new(controllers)
            .map(|d| d.dispatch(&classes, &ingresses))
            .map_err(|e| e.to_string())
    };

    if args.explain {
        explain(&dispatch(controllers(&args, &classes)?)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some((configmap, prefix)) = &args.lint {
        let maps: Vec<_> = files.iter().flat_map(|(_, m)| &m.config_maps).collect();
        lint(&ingresses, &maps, configmap.as_deref(), prefix.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let (snapshot, quarantined_classes, unrouted) = if args.controller.is_some() {
        let dispatched = dispatch(controllers(&args, &classes)?)?;
        let own = &dispatched.controllers[0];
        // Other controllers' Ingresses are still validated: `--check` speaks for every file.
        let (served, unrouted): (Vec<_>, Vec<_>) = ingresses
            .iter()
            .zip(&dispatched.decisions)
            .partition(|(_, d)| d.controller.as_deref() == Some(own.controller.as_str()));
        let unrouted: Vec<&Ingress> = unrouted.into_iter().map(|(ingress, _)| ingress).collect();
        // The controller's routes with the TLS names of the same Ingresses, whose findings
        // are reported too.
        let snapshot = Snapshot::build(served.into_iter().map(|(i, _)| i), args.options.clone());
        let quarantined: Vec<InvalidClass> = dispatched
            .quarantined_classes
            .into_iter()
            .map(|q| InvalidClass { errors: q.errors })
            .collect();
        (snapshot, quarantined, unrouted)
    } else {
        let quarantined: Vec<InvalidClass> = classes
            .iter()
            .filter_map(|class| {
                let errors = validate_ingress_class(class);
                (!errors.is_empty()).then_some(InvalidClass { errors })
            })
            .collect();
        let snapshot = Snapshot::build(&ingresses, args.options.clone());
        (snapshot, quarantined, Vec::new())
    };

    let invalid =
        report(&files, &snapshot, &quarantined_classes, &unrouted).map_err(|e| e.to_string())?;
    if args.check {
        return Ok(if invalid {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    answer_requests(snapshot.routes())?;
    Ok(ExitCode::SUCCESS)
}

/// Reads request lines from stdin and answers each on stdout as it comes.
fn answer_requests(table: &RouteTable) -> Result<(), String> {
    let stdin = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    for line in stdin.lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(table, &request),
            Err(e) => Answer::Rejected {
                status: 400,
                reason: format!("unreadable request line: {e}"),
            },
        };
        serde_json::to_writer(&mut out, &reply).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
        // Flush per line, for interactive and piped use alike.
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
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
