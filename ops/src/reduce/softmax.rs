/// Which of the softmax family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxKind {
    /// exp(x - max) / sum(exp(x - max)).
    Softmax,
    /// x - max - log(sum(exp(x - max))).
    LogSoftmax,
    /// 1 at the first maximum of each group, 0 elsewhere.
    Hardmax,
}

/// Softmax, LogSoftmax, Hardmax (ONNX opsets 1, 11, 13). From opset 13 the group is the one
/// `axis`; before, the input is seen as 2-D `[prod(dims[..axis]), prod(dims[axis..])]` and the
/// group is each row (`coerce_2d`).
#[derive(Clone, Debug, PartialEq)]
pub struct Softmax {
    pub kind: SoftmaxKind,
    pub axis: i64,
    pub coerce_2d: bool,
}
