//! From "one Ingress changed" to "new table ready", in a set of 10 000 generated Ingresses.
//!
//! `cargo bench --bench update` — `RouteTable::update` (only the hosts the change touches are
//! compiled again) against a full `RouteTable::build`, for an Ingress whose paths change, one
//! added and one deleted; and the same through a `Reconciler` event, dispatch included.

#[allow(dead_code)]
#[path = "support/corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ingress_router::model::{HttpIngressPath, Ingress, ObjectRef};
use ingress_router::{Event, Object, Objects, Reconciler, RouteTable, TableOptions};

const SIZE: usize = 10_000;

/// The Ingress at `index` with one more path on its first rule that has paths.
fn edited(ingress: &Ingress) -> Ingress {
    let mut edited = ingress.clone();
    let rule = edited
        .spec
        .rules
        .iter_mut()
        .find_map(|r| r.http.as_mut())
        .expect("a rule with paths");
    let mut path: HttpIngressPath = rule.paths[0].clone();
    path.path = Some("/added/by/the/edit".to_owned());
    path.path_type = Some("Prefix".to_owned());
    rule.paths.push(path);
    edited
}

fn bench(c: &mut Criterion) {
    let corpus = corpus::generate(SIZE, corpus::SEED);
    let before = corpus.ingresses;
    let index = before.len() / 2;
    let mut after = before.clone();
    after[index] = edited(&before[index]);
    let changed = [before[index].object_ref()];
    let added = {
        let mut added = edited(&before[index]);
        added.metadata.name.push_str("-copy");
        added
    };
    let mut with_added = before.clone();
    with_added.push(added.clone());
    let mut without = before.clone();
    let deleted: ObjectRef = without.remove(index).object_ref();

    let table = RouteTable::build(&before, TableOptions::default());
    // The incremental table is the full build's.
    let full = RouteTable::build(&after, TableOptions::default());
    let updated = table.update(&after, &changed);
    assert_eq!(updated.diagnostics(), full.diagnostics());
    assert_eq!(updated.rule_count(), full.rule_count());
    eprintln!(
        "{} Ingresses, {} path rules routed",
        before.len(),
        table.rule_count()
    );

    let mut group = c.benchmark_group(format!("update_{SIZE}"));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("edit/update", |b| {
        b.iter(|| black_box(table.update(black_box(&after), &changed)))
    });
    group.bench_function("add/update", |b| {
        b.iter(|| black_box(table.update(&with_added, std::slice::from_ref(&added.object_ref()))))
    });
    group.bench_function("delete/update", |b| {
        b.iter(|| black_box(table.update(&without, std::slice::from_ref(&deleted))))
    });
    group.sample_size(10);
    group.bench_function("edit/full build", |b| {
        b.iter(|| {
            black_box(RouteTable::build(
                black_box(&after),
                TableOptions::default(),
            ))
        })
    });

    // Through the reconciler: the event, dispatch, the update and the swap.
    let mut reconciler = Reconciler::every_ingress(TableOptions::default());
    reconciler.apply_all([
        Event::ReplaceAll(Objects::IngressClasses(Vec::new())),
        Event::ReplaceAll(Objects::Ingresses(before.clone())),
    ]);
    let versions = [after[index].clone(), before[index].clone()];
    let mut next = 0;
    group.sample_size(20);
    group.bench_function("edit/reconciler event", |b| {
        b.iter_batched(
            || {
                next = 1 - next;
                versions[next].clone()
            },
            |ingress| {
                let outcome = reconciler.apply(Event::Apply(Object::Ingress(ingress)));
                assert_eq!(outcome.rebuilt.len(), 1);
                outcome
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
