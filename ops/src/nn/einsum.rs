use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// One subscript of an einsum term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Letter(u8),
    /// `...`: the dims not named by letters.
    Ellipsis,
}

/// Einsum (opsets 12, 28): `output[out-term] = sum over the other labels of the product of
/// input_k[term_k]`. A label repeated within a term takes the diagonal. Without `->` the
/// output is the ellipsis dims (if any) followed by the letters that appear exactly once
/// in the whole equation, in ASCII order. `...` stands for the same trailing-aligned batch
/// dims in every term (numpy broadcasting: a term may cover fewer of them, and a dim of
/// size 1 broadcasts against any size, for letters too). Floats are accumulated in at least
/// f32; integers wrap.
#[derive(Clone, Debug, PartialEq)]
pub struct Einsum {
    pub equation: String,
    pub inputs: Vec<Vec<Label>>,
    /// `None` in implicit mode (no `->`).
    pub output: Option<Vec<Label>>,
}

/// An einsum resolved for given input ranks: every axis mapped to a label id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumPlan {
    pub n_labels: usize,
    /// For each input, the label id of each of its axes.
    pub inputs: Vec<Vec<usize>>,
    /// The label id of each output axis.
    pub output: Vec<usize>,
}

fn parse_term(s: &str) -> Result<Vec<Label>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut ellipsis = false;
    while i < b.len() {
        if b[i] == b'.' {
            if b.get(i..i + 3) != Some(b"...") {
                return Err(Error::model(format!(
                    "einsum term \"{s}\" has a '.' that is not part of \"...\""
                )));
            }
            if ellipsis {
                return Err(Error::model(format!(
                    "einsum term \"{s}\" has more than one \"...\""
                )));
            }
            ellipsis = true;
            out.push(Label::Ellipsis);
            i += 3;
        } else if b[i].is_ascii_alphabetic() {
            out.push(Label::Letter(b[i]));
            i += 1;
        } else {
            return Err(Error::model(format!(
                "einsum term \"{s}\" has the character {:?}; only letters and \"...\" are allowed",
                b[i] as char
            )));
        }
    }
    Ok(out)
}

impl Einsum {
    /// Parses an equation such as `"bij, bjk -> bik"` or `"...ii->...i"`.
    pub fn parse(equation: &str) -> Result<Einsum> {
        let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match eq.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (eq.as_str(), None),
        };
        let inputs = lhs.split(',').map(parse_term).collect::<Result<Vec<_>>>()?;
        let output = rhs.map(parse_term).transpose()?;
        if let Some(out) = &output {
            for (i, l) in out.iter().enumerate() {
                if out[..i].contains(l) {
                    return Err(Error::model(format!(
                        "einsum output \"{}\" repeats a subscript",
                        rhs.unwrap_or_default()
                    )));
                }
                if let Label::Letter(c) = l {
                    if !inputs.iter().any(|t| t.contains(l)) {
                        return Err(Error::model(format!(
                            "einsum output subscript '{}' does not appear in the inputs of \"{equation}\"",
                            *c as char
                        )));
                    }
                }
            }
        }
        Ok(Einsum {
            equation: equation.to_string(),
            inputs,
            output,
        })
    }

    /// Maps every axis of inputs of the given ranks to a label id.
    pub fn plan(&self, ranks: &[usize]) -> Result<EinsumPlan> {
        if ranks.len() != self.inputs.len() {
            return Err(Error::compute(format!(
                "einsum \"{}\" has {} terms, got {} inputs",
                self.equation,
                self.inputs.len(),
                ranks.len()
            )));
        }
        // Number of dims each ellipsis covers.
        let mut ell = Vec::with_capacity(ranks.len());
        for (k, (term, &rank)) in self.inputs.iter().zip(ranks).enumerate() {
            let letters = term.iter().filter(|l| **l != Label::Ellipsis).count();
            let has = term.contains(&Label::Ellipsis);
            if rank < letters || (!has && rank != letters) {
                return Err(Error::compute(format!(
                    "einsum \"{}\": input {k} has rank {rank}, its term has {letters} subscripts{}",
                    self.equation,
                    if has { " and \"...\"" } else { "" }
                )));
            }
            ell.push(rank - letters);
        }
        let n_ell = ell.iter().copied().max().unwrap_or(0);
        // Ellipsis dims take ids 0..n_ell, letters follow in order of appearance.
        let mut letters: Vec<u8> = Vec::new();
        let id_of = |c: u8, letters: &mut Vec<u8>| match letters.iter().position(|&x| x == c) {
            Some(p) => n_ell + p,
            None => {
                letters.push(c);
                n_ell + letters.len() - 1
            }
        };
        let mut inputs = Vec::with_capacity(ranks.len());
        for (term, &e) in self.inputs.iter().zip(&ell) {
            let mut axes = Vec::new();
            for l in term {
                match l {
                    Label::Letter(c) => axes.push(id_of(*c, &mut letters)),
                    Label::Ellipsis => axes.extend(n_ell - e..n_ell),
                }
            }
            inputs.push(axes);
        }
        let output = match &self.output {
            Some(out) => {
                let mut axes = Vec::new();
                for l in out {
                    match l {
                        Label::Letter(c) => axes.push(id_of(*c, &mut letters)),
                        Label::Ellipsis => axes.extend(0..n_ell),
                    }
                }
                axes
            }
            None => {
                let mut once: Vec<u8> = letters
                    .iter()
                    .copied()
                    .filter(|&c| {
                        self.inputs
                            .iter()
                            .flatten()
                            .filter(|l| **l == Label::Letter(c))
                            .count()
                            == 1
                    })
                    .collect();
                once.sort_unstable();
                let mut axes: Vec<usize> = (0..n_ell).collect();
                axes.extend(once.into_iter().map(|c| id_of(c, &mut letters)));
                axes
            }
        };
        Ok(EinsumPlan {
            n_labels: n_ell + letters.len(),
            inputs,
            output,
        })
    }
}

impl OpDef for Einsum {
    const NAMES: &'static [&'static str] = &["Einsum"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let shapes: Option<Vec<&Shape>> = (0..inputs.len())
            .map(|i| input(inputs, i).and_then(|x| x.shape()))
            .collect();
        let Some(shapes) = shapes else {
            return Ok(vec![tensor_type(dtype, None)]);
        };
        let ranks: Vec<usize> = shapes.iter().map(|s| s.rank()).collect();
        let plan = self.plan(&ranks).map_err(|e| Error::model(e.to_string()))?;
        // The size of each label: a known size other than 1 wins, then a symbol.
        let mut dims: Vec<Option<Dim>> = vec![None; plan.n_labels];
        for (axes, shape) in plan.inputs.iter().zip(&shapes) {
            for (&id, d) in axes.iter().zip(&shape.0) {
                dims[id] = match (dims[id].take(), d) {
                    (None, d) => Some(d.clone()),
                    (Some(Dim::Known(1)), d) => Some(d.clone()),
                    (Some(prev), Dim::Known(1)) => Some(prev),
                    (Some(Dim::Known(a)), Dim::Known(b)) if a != *b => {
                        return Err(Error::model(format!(
                            "einsum \"{}\": a subscript has sizes {a} and {b}",
                            self.equation
                        )))
                    }
                    (Some(Dim::Sym(_)), d @ Dim::Known(_)) => Some(d.clone()),
                    (Some(prev), _) => Some(prev),
                };
            }
        }
        let out: Vec<Dim> = plan
            .output
            .iter()
            .map(|&id| dims[id].clone().unwrap_or(Dim::Known(1)))
            .collect();
        Ok(vec![tensor_type(dtype, Some(Shape(out)))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_output_is_sorted_single_letters() {
        let e = Einsum::parse("ba, ac").unwrap();
        let p = e.plan(&[2, 2]).unwrap();
        // b=0, a=1, c=2; output "bc".
        assert_eq!(p.output, vec![0, 2]);
        let e = Einsum::parse("ii").unwrap();
        assert_eq!(e.plan(&[2]).unwrap().output, Vec::<usize>::new());
    }

    #[test]
    fn ellipsis_covers_the_remaining_dims_right_aligned() {
        let e = Einsum::parse("...ii ->...i").unwrap();
        let p = e.plan(&[4]).unwrap();
        assert_eq!(p.inputs, vec![vec![0, 1, 2, 2]]);
        assert_eq!(p.output, vec![0, 1, 2]);
        let e = Einsum::parse("...ij,...jk").unwrap();
        let p = e.plan(&[4, 3]).unwrap();
        assert_eq!(p.inputs[1], vec![1, 3, 4]);
        assert_eq!(p.output, vec![0, 1, 2, 4]);
    }

    #[test]
    fn bad_equations_are_refused() {
        assert!(Einsum::parse("i.j").is_err());
        assert!(Einsum::parse("ij->k").is_err());
        assert!(Einsum::parse("ij->ii").is_err());
        assert!(Einsum::parse("ij").unwrap().plan(&[3]).is_err());
    }
}
