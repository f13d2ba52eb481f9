//! Backends and run-time device selection (`--device cpu|cuda:N`).

use std::fmt;
use std::str::FromStr;

/// The CPU backend (Burn's pure-Rust `flex`).
pub type Cpu = burn::backend::Flex;
/// The CPU backend with autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// Makes freed memory stay in the process for the next allocation. Every training step
/// allocates and frees the same large activation buffers; glibc's default gives blocks of a few
/// MB back to the kernel and takes them again as fresh pages, page fault by page fault, which
/// cost the CPU ResNet-32 step over a quarter of its time (`cargo bench --bench train_step`,
/// when this was introduced: 276 → 376 img/s). Large blocks come from the heap instead of their own mappings (which
/// glibc caps at 32 MiB: an ImageNet activation is larger) and the heap is never trimmed, so
/// the process holds its peak footprint. Call once at start-up; a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, to values in their valid ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device '{0}': expected 'cpu' or 'cuda:N'")]
    Unknown(String),
    #[error("device '{0}' needs a build with CUDA support: cargo build --release --features cuda")]
    NoCuda(String),
    #[error("device '{0}': {1}")]
    NoDriver(String, String),
}

impl crate::exit::ExitStatus for DeviceError {
    fn exit_code(&self) -> i32 {
        crate::exit::INPUT
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Fails early, before any work, when this build or this machine cannot drive the device.
    pub fn check_available(self) -> Result<Self, DeviceError> {
        match self {
            Self::Cuda(_) if !cfg!(feature = "cuda") => Err(DeviceError::NoCuda(self.to_string())),
            Self::Cuda(_) if !cuda_driver_loads() => Err(DeviceError::NoDriver(
                self.to_string(),
                "the NVIDIA driver library (libcuda.so.1) cannot be loaded on this machine".into(),
            )),
            _ => Ok(self),
        }
    }
}

/// Whether the CUDA driver library can be loaded; without it the CUDA backend panics on first
/// use instead of returning an error.
fn cuda_driver_loads() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: dlopen with a constant, NUL-terminated name; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            if handle.is_null() {
                return false;
            }
            libc::dlclose(handle);
        }
        true
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Runs `$body` with `$B` bound to the inference backend type and `$device` to its device.
#[macro_export]
macro_rules! with_backend {
    ($spec:expr, |$B:ident, $device:ident| $body:expr) => {{
        match $spec {
            $crate::backend::DeviceSpec::Cpu => {
                type $B = $crate::backend::Cpu;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(index) => {
                type $B = $crate::backend::Gpu;
                let $device = burn::backend::cuda::CudaDevice::new(index);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            spec @ $crate::backend::DeviceSpec::Cuda(_) => {
                return Err($crate::backend::DeviceError::NoCuda(spec.to_string()).into());
            }
        }
    }};
}
