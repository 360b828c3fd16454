//! Choosing where models run: the CPU (burn-ndarray) or a GPU (burn-wgpu), either burn's own
//! wgpu device or one shared with the app's renderer.

use burn::backend::wgpu::{RuntimeOptions, WgpuSetup};
use burn::tensor::Device;

use crate::ModelError;

/// Where to run, as the user chooses it (`--device`, preferences).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ComputeDevice {
    Cpu,
    #[default]
    Gpu,
}

impl std::str::FromStr for ComputeDevice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(format!("unknown device {other:?}: use gpu or cpu")),
        }
    }
}

/// burn-ndarray on the CPU.
// The issue asks for burn-ndarray on the CPU; burn 0.22 marks it deprecated in favour of `flex`.
#[allow(deprecated)]
pub fn cpu_device() -> Device {
    Device::ndarray()
}

/// A burn-wgpu device on an existing wgpu device (the app's), so models and the renderer share
/// one GPU context. The device must have been requested with its adapter's full features and
/// limits. Register each setup once and clone the returned device.
pub fn shared_gpu_device(
    instance: wgpu::Instance,
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
) -> Result<Device, ModelError> {
    let backend = adapter.get_info().backend;
    let setup = WgpuSetup {
        instance,
        adapter,
        device,
        queue,
        backend,
    };
    burn::backend::wgpu::try_init_device(setup, RuntimeOptions::default())
        .map(Device::new)
        .map_err(|e| ModelError::NoGpu(format!("{e:?}")))
}

/// The device for a choice when there is no app device to share (the CLI): burn's default wgpu
/// device for `Gpu`, checked with a tiny computation so a machine without a usable GPU fails
/// here with a message rather than later.
pub fn standalone_device(choice: ComputeDevice) -> Result<Device, ModelError> {
    match choice {
        ComputeDevice::Cpu => Ok(cpu_device()),
        ComputeDevice::Gpu => {
            let probe = std::panic::catch_unwind(|| {
                let device = Device::wgpu(Default::default());
                let t = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
                let sum: f32 = t.sum().into_scalar();
                (device, sum)
            });
            match probe {
                Ok((device, sum)) if (sum - 3.0).abs() < 1e-6 => Ok(device),
                Ok(_) => Err(ModelError::NoGpu(
                    "the GPU returned a wrong result for a test sum".into(),
                )),
                Err(_) => Err(ModelError::NoGpu(
                    "no wgpu adapter could be opened; use --device cpu".into(),
                )),
            }
        }
    }
}

/// Whether `device` is the CPU backend (burn-ndarray).
pub fn is_cpu(device: &Device) -> bool {
    format!("{:?}", device.as_dispatch()).contains("NdArray")
}

/// A short name for messages and benchmark tables ("cpu (ndarray)", "gpu (wgpu)").
pub fn describe(device: &Device) -> String {
    if is_cpu(device) {
        "cpu (ndarray)".into()
    } else {
        format!("gpu (wgpu) {:?}", device.as_dispatch())
    }
}
