//! Export of the `signal` family: DFT, STFT, windows and mel weights.

use xnpu_core::Tensor;
use xnpu_ops::signal as sg;
use xnpu_ops::OpDef;

use super::{a_bool, a_int, Emit, OnnxExport, R};

impl OnnxExport for sg::Dft {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![
            a_bool("inverse", self.inverse),
            a_bool("onesided", self.onesided),
        ];
        match self.axis {
            Some(axis) if e.opset() < 20 => {
                attrs.push(a_int("axis", axis));
                let mut ins = e.ins.clone();
                ins.truncate(2);
                let outs = e.outs.clone();
                e.add("DFT", "", ins, outs, attrs)
            }
            Some(axis) => {
                let mut ins = e.ins.clone();
                ins.truncate(2);
                while ins.len() < 2 {
                    ins.push(String::new());
                }
                if axis != -2 {
                    ins.push(e.constant("axis", &Tensor::scalar(axis))?);
                }
                let outs = e.outs.clone();
                e.add("DFT", "", ins, outs, attrs)
            }
            None => {
                e.need(20)?;
                e.simple("DFT", attrs)
            }
        }
    }
}

impl OnnxExport for sg::Stft {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("STFT", vec![a_bool("onesided", self.onesided)])
    }
}

impl OnnxExport for sg::Window {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            self.name(),
            vec![
                a_bool("periodic", self.periodic),
                a_int("output_datatype", self.dtype.onnx_code() as i64),
            ],
        )
    }
}

impl OnnxExport for sg::MelWeightMatrix {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "MelWeightMatrix",
            vec![a_int("output_datatype", self.dtype.onnx_code() as i64)],
        )
    }
}
