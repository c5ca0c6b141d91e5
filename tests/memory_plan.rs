//! The memory planner on the `light_*` models: each is planned with its symbolic dims bound the
//! way the light-model runner feeds them (unknown dims 1), the plan is verified (no two values
//! live at once share bytes), and the peak planned arena is compared with allocating every
//! intermediate separately. Also planned after the optimisation pipeline, and split over two
//! devices.

mod common;

use std::collections::HashMap;

use xnpu::graph::memory::{plan, MemoryPlan, PlanOptions};
use xnpu::graph::passes::{self, Options};
use xnpu::graph::{onnx, Graph};
use xnpu::{Dim, ValueType};

/// Every symbol of the graph's inputs bound to 1.
fn bindings(g: &Graph) -> HashMap<String, usize> {
    let mut b = HashMap::new();
    for &v in &g.inputs {
        if let ValueType::Tensor(t) = &g.values[v].ty {
            for d in t.shape.iter().flat_map(|s| &s.0) {
                if let Dim::Sym(s) = d {
                    b.insert(s.clone(), 1);
                }
            }
        }
    }
    b
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn plan_checked(g: &Graph, b: &HashMap<String, usize>, o: &PlanOptions<'_>) -> MemoryPlan {
    let p = plan(g, b, o).unwrap_or_else(|e| panic!("{}: {e}", g.name));
    p.verify_with(g, o)
        .unwrap_or_else(|e| panic!("{}: {e}", g.name));
    p
}

#[test]
fn light_models_plan_and_verify() {
    let models = common::light_models();
    let mut rows = Vec::new();
    for path in &models {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut model = onnx::load(path).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let b = bindings(&model.graph);
        let g = &model.graph;

        let p = plan_checked(g, &b, &PlanOptions::default());
        println!("{stem}: {p}");
        assert!(p.planned_bytes <= p.naive_bytes, "{stem}: {p}");
        let no_reuse = plan_checked(
            g,
            &b,
            &PlanOptions {
                in_place: false,
                ..Default::default()
            },
        );
        assert!(p.planned_bytes <= no_reuse.planned_bytes, "{stem}");

        // Two devices: the first half of the nodes on 0, the rest on 1.
        let half = g.nodes.len() / 2;
        let devices: Vec<usize> = (0..g.nodes.len()).map(|i| usize::from(i >= half)).collect();
        let split = plan_checked(
            g,
            &b,
            &PlanOptions {
                device_of_node: Some(&devices),
                ..Default::default()
            },
        );
        assert_eq!(split.arena_sizes.len(), 2, "{stem}");
        assert_eq!(split.naive_bytes, p.naive_bytes, "{stem}");

        let nodes = g.nodes.len();
        // The light models make their weights with ConstantOfShape nodes; compiled at level
        // `all` (as a Session does), folding turns those weights into constants, out of the
        // arena, and fusion removes intermediates.
        let options = Options {
            evaluate: Some(&xnpu_backend_cpu::run_node),
            max_folded_bytes: 1 << 30,
            ..Default::default()
        };
        passes::optimize(&mut model, &options).unwrap_or_else(|e| panic!("{stem}: optimize: {e}"));
        let opt = plan_checked(&model.graph, &b, &PlanOptions::default());
        println!("{stem} (level all): {opt}");

        if stem.contains("resnet50") {
            assert!(p.planned_bytes < p.naive_bytes, "{stem}: {p}");
        }
        rows.push((stem, nodes, p, no_reuse.planned_bytes, split, opt));
    }
    println!();
    println!(
        "| model | nodes | naive MiB | planned MiB | × | no in-place MiB | in place | aliases | dynamic | 2 devices MiB | level all: planned / naive MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (stem, nodes, p, no_reuse, split, opt) in &rows {
        println!(
            "| {stem} | {nodes} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.1} + {:.1} | {:.1} / {:.1} |",
            mib(p.naive_bytes),
            mib(p.planned_bytes),
            p.ratio(),
            mib(*no_reuse),
            p.in_place.len(),
            p.aliases.len(),
            p.dynamic_values.len(),
            mib(split.arena_sizes[0]),
            mib(split.arena_sizes[1]),
            mib(opt.planned_bytes),
            mib(opt.naive_bytes),
        );
    }
}
