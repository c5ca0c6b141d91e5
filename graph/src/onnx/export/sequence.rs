//! Export of the `sequence` family: sequence and optional ops.

use xnpu_ops::sequence as sq;
use xnpu_ops::OpDef;

use super::{a_bool, a_int, a_type, Emit, OnnxExport, R};

impl OnnxExport for sq::SequenceConstruct {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(self.name(), vec![])
    }
}

impl OnnxExport for sq::SequenceEmpty {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "SequenceEmpty",
            vec![a_int("dtype", self.dtype.onnx_code() as i64)],
        )
    }
}

impl OnnxExport for sq::SequenceInsert {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(self.name(), vec![])
    }
}

impl OnnxExport for sq::SequenceAt {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(self.name(), vec![])
    }
}

impl OnnxExport for sq::SequenceErase {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(self.name(), vec![])
    }
}

impl OnnxExport for sq::SequenceLength {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(self.name(), vec![])
    }
}

impl OnnxExport for sq::SplitToSequence {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "SplitToSequence",
            vec![a_int("axis", self.axis), a_bool("keepdims", self.keepdims)],
        )
    }
}

impl OnnxExport for sq::ConcatFromSequence {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "ConcatFromSequence",
            vec![a_int("axis", self.axis), a_bool("new_axis", self.new_axis)],
        )
    }
}

impl OnnxExport for sq::Optional {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = self.elem.iter().map(|t| a_type("type", t)).collect();
        e.simple("Optional", attrs)
    }
}

impl OnnxExport for sq::OptionalHasElement {
    fn export(&self, e: &mut Emit<'_>) -> R {
        optional_accessor(self.name(), e)
    }
}

impl OnnxExport for sq::OptionalGetElement {
    fn export(&self, e: &mut Emit<'_>) -> R {
        optional_accessor(self.name(), e)
    }
}

/// OptionalHasElement or OptionalGetElement: before opset 18 the input must be given and be
/// an optional.
fn optional_accessor(name: &str, e: &mut Emit<'_>) -> R {
    let optional_in = matches!(e.in_type(0), Some(xnpu_core::ValueType::Optional(_)));
    if !e.has(0) || !optional_in {
        e.need(18)?;
    }
    e.simple(name, vec![])
}
