/// LayerNormalization (ONNX opset 17): normalizes over axes `axis..rank`,
/// `y = (x - mean) / sqrt(var + epsilon) * scale + bias` (scale and bias broadcast to the
/// normalized shape). Optional outputs: Mean and InvStdDev (reduced axes kept as 1), in f32
/// when `stash_f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    pub axis: i64,
    pub epsilon: f32,
    pub stash_f32: bool,
}

/// RMSNormalization (ONNX opset 23): `y = x / sqrt(mean(x², axes axis..rank) + epsilon) * scale`.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNorm {
    pub axis: i64,
    pub epsilon: f32,
}

/// BatchNormalization (ONNX opsets 1–15) on `[N, C, ...]` with per-channel scale, bias, mean,
/// var: `y = (x - mean) / sqrt(var + epsilon) * scale + bias`. In training mode the batch's
/// own mean and (population) variance are used and the running statistics are returned,
/// updated as `running * momentum + batch * (1 - momentum)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub epsilon: f32,
    pub momentum: f32,
    pub training: bool,
}

/// InstanceNormalization (ONNX opsets 1, 6): normalizes each `(n, c)` over its spatial
/// elements, then `* scale[c] + bias[c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceNorm {
    pub epsilon: f32,
}

/// GroupNormalization (ONNX opsets 18, 21): channels split into `num_groups` groups, each
/// normalized over its channels and spatial elements; scale and bias are per channel
/// (opset 21) or per group (opset 18, `per_group_affine`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNorm {
    pub epsilon: f32,
    pub num_groups: usize,
    pub per_group_affine: bool,
}

/// LpNormalization (ONNX opset 1, 22): `x / ||x||_p` along `axis` (p is 1 or 2).
#[derive(Clone, Debug, PartialEq)]
pub struct LpNorm {
    pub axis: i64,
    pub p: i64,
}

/// LRN (ONNX opsets 1, 13): across channels of `[N, C, ...]`,
/// `y = x / (bias + alpha / size * sum(x² over channels c-⌊(size-1)/2⌋..=c+⌈(size-1)/2⌉))^beta`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lrn {
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
    pub size: usize,
}

/// MeanVarianceNormalization (ONNX opsets 9, 13): `(x - mean) / (sqrt(var) + 1e-9)` over `axes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mvn {
    pub axes: Vec<i64>,
}
