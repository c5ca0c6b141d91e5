/// Which loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// NegativeLogLikelihoodLoss (opsets 12, 13, 22): input holds log-probabilities `[N, C, ...]`.
    NegativeLogLikelihood,
    /// SoftmaxCrossEntropyLoss (opsets 12, 13): input holds scores; log-softmax over axis 1
    /// first (returned as the optional second output).
    SoftmaxCrossEntropy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReduction {
    None,
    Sum,
    /// Sum divided by the sum of the weights of the targets that count.
    Mean,
}

/// `loss[n, d...] = -input[n, target[n, d...], d...] * weight[target]`; targets equal to
/// `ignore_index` contribute 0 and weigh 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    pub kind: LossKind,
    pub reduction: LossReduction,
    pub ignore_index: Option<i64>,
}
