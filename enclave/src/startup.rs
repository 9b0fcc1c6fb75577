//! Start-up: configuration, model, keys, evidence, certificate, engine, listener.

use crate::api::AppState;
use crate::attester::{Attester, ClaimsTemplate, RuntimeKeys};
use crate::config::{Config, Limits, LoadedLaunchConfig};
use crate::engine::{Engine, EngineLimits, LoadedModel};
use crate::metrics::Metrics;
use crate::platform::{self, EvidenceSource};
use crate::receipt_log::{self, LogOptions, ReceiptLog};
use crate::receipts::Issuer;
use crate::{server, tls};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How to run, beyond the configuration file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Config,
    /// Use the simulated SEV-SNP TEE (development only).
    pub simulate: bool,
    /// With `simulate`: this many simulated NVIDIA GPUs, bound in claim 8 and required by
    /// the written policy (`[gpu] count`).
    pub simulate_gpus: usize,
    /// Sign no receipts and keep no log (benchmarks only).
    pub dangerous_no_receipts: bool,
    /// Serve even when the hardware's launch data (SNP HOST_DATA, TDX MRCONFIGID) is not
    /// the digest of the launch configuration loaded (launches by other tools).
    pub dangerous_unbound_launch_config: bool,
    /// DANGEROUS: cheat on this fraction of the jobs in this way (tests of the auditor).
    #[cfg(feature = "simulate")]
    pub dangerous_cheat: Option<(crate::cheat::CheatMode, f64)>,
}

/// The receipt log's directory under the state directory.
pub const RECEIPTS_DIR: &str = "receipts";

/// A started runtime, ready to serve.
pub struct Runtime {
    pub state: Arc<AppState>,
    pub tls: Arc<rustls::ServerConfig>,
    pub listener: tokio::net::TcpListener,
    /// The client policy written for a simulated launch.
    pub policy_path: Option<PathBuf>,
}

const SIMULATION_WARNING: &str = "\
veritee-enclave: ************************************************************************
veritee-enclave: *  SIMULATED TEE. There is no confidential VM here: the evidence is signed *
veritee-enclave: *  by a development root generated on this machine. It proves NOTHING.     *
veritee-enclave: *  Every verifier rejects it unless its policy dangerously trusts that    *
veritee-enclave: *  root. Never send real data to this server.                             *
veritee-enclave: ************************************************************************";

/// Everything up to a bound listener. Errors are complete sentences for the operator.
pub async fn start(opts: Options) -> Result<Runtime, String> {
    let config = opts.config;
    config.check()?;
    let launch = match (&config.launch_config, config.launch_config_optional) {
        (Some(path), true) => {
            let launch = LoadedLaunchConfig::load_if_present(path)?;
            if launch.digest == crate::sha256(b"") {
                eprintln!(
                    "veritee-enclave: launch configuration: none at {} (or an empty one): running with the empty configuration",
                    path.display()
                );
            }
            launch
        }
        (path, _) => LoadedLaunchConfig::load(path.as_deref())?,
    };
    let model_path = config
        .model
        .clone()
        .unwrap_or_else(inference::gguf::default_model_path);
    let model_id = config.model_id.clone();
    #[cfg(feature = "simulate")]
    if opts.dangerous_cheat.is_some() && !opts.simulate {
        return Err("--dangerous-cheat needs --simulate: a cheating runtime is for testing the auditor, never for a real TEE".into());
    }
    #[cfg(feature = "simulate")]
    let cheat = opts.dangerous_cheat;
    let cpu_kernel = config.cpu_kernel.clone();
    let model = tokio::task::spawn_blocking(move || {
        let mut model = LoadedModel::load(&model_path, model_id.as_deref())?;
        if let Some(name) = &cpu_kernel {
            model.force_cpu_kernel(name)?;
        }
        #[cfg(feature = "simulate")]
        if let Some((mode, rate)) = cheat {
            eprintln!(
                "veritee-enclave: DANGEROUS: --dangerous-cheat {}: cheating on {:.0}% of the jobs, with receipts signed as if honest (for testing the auditor only)",
                mode.as_str(),
                rate * 100.0
            );
            model.cheat = Some(Arc::new(crate::cheat::Cheat::load(mode, rate, &model_path)?));
        }
        Ok::<_, String>(model)
    })
    .await
    .map_err(|e| format!("loading the model: {e}"))??;
    let engine_limits = engine_limits(&config.limits, &model)?;
    if let Some(expected) = launch.model_digest {
        if expected != model.digest {
            return Err(format!(
                "the model's digest {} is not the launch configuration's model_digest {}",
                hex::encode(model.digest),
                hex::encode(expected)
            ));
        }
    }
    let keys = RuntimeKeys::generate()?;
    let template = ClaimsTemplate {
        model_digest: model.digest,
        launch_config_digest: launch.digest,
        auditor_hpke_public_key: launch.auditor_hpke_public_key,
    };
    if opts.simulate_gpus > 0 && !opts.simulate {
        return Err(
            "--simulate-gpus needs --simulate: simulated GPUs are for the simulated TEE only"
                .into(),
        );
    }
    if opts.simulate && config.gpus > 0 {
        return Err(
            "gpus (NVIDIA GPUs through NVML) is for real TEEs; the simulated TEE takes --simulate-gpus"
                .into(),
        );
    }
    let (source, policy_text, gpu_source): SimulatedParts = if opts.simulate {
        simulated_source(&config, &launch, model.digest, opts.simulate_gpus)?
    } else {
        let source = platform::detect(&config.tsm_report_dir, &config.sev_guest_device)
            .map_err(|e| e.to_string())?;
        let gpus = (config.gpus > 0).then(|| {
            Box::new(crate::gpu::NvidiaDriverSource::new(config.gpus))
                as Box<dyn crate::gpu::GpuEvidenceSource>
        });
        (source, None, gpus)
    };
    let collateral = match &config.collateral_dir {
        Some(dir) => platform::load_collateral_dir(dir).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let mut attester = Attester::new(source, collateral, &keys, &template, opts.simulate);
    if let Some(gpus) = gpu_source {
        let n = attester
            .bind_gpus(gpus.as_ref())
            .map_err(|e| format!("getting GPU evidence: {e}"))?;
        eprintln!(
            "veritee-enclave: {n} GPU(s) bound in the runtime claims: {}",
            gpus.describe()
        );
        // NVIDIA RIMs the host handed in (collateral-dir/nvidia-rims/): served, not
        // trusted; a bad or missing one is logged, never fatal.
        if let Some(dir) = &config.collateral_dir {
            let (rims, skipped) = crate::gpu::rims::load(dir);
            for line in skipped.iter().chain(&attester.serve_gpu_rims(&rims)) {
                eprintln!("veritee-enclave: NVIDIA RIMs: {line}");
            }
            eprintln!(
                "veritee-enclave: NVIDIA RIMs: {} served for {n} GPU(s) ({} file(s) handed in)",
                attester.served_rims(),
                rims.len()
            );
            // OCSP responses for the device chains (collateral-dir/nvidia-ocsp/): served
            // when they verify now, re-read every minute; a bad one is logged.
            for line in attester.serve_gpu_ocsp(dir, gpus.device_anchors()) {
                eprintln!("veritee-enclave: NVIDIA OCSP: {line}");
            }
        }
    }
    let bundle = attester
        .bundle(None)
        .map_err(|e| format!("getting evidence from the platform: {e}"))?;
    match crate::attester::check_launch_binding(&bundle, &launch.digest) {
        Ok(()) => {}
        Err(e) if opts.dangerous_unbound_launch_config => eprintln!(
            "veritee-enclave: DANGEROUS (--dangerous-unbound-launch-config): serving anyway: {e}"
        ),
        Err(e) => return Err(e),
    }
    let mut policy_path = None;
    if let Some(text) = policy_text {
        // Check our own evidence exactly as a client will, before serving anything.
        let policy = attestation::binding::PolicyFile::from_toml(&text)
            .map_err(|e| format!("the simulated launch policy does not load: {e}"))?;
        let now = attestation::Timestamp::from_unix(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
        bundle
            .verify_with(&policy, now)
            .map_err(|e| format!("the simulated evidence does not verify: {e}"))?;
        let path = config.state_dir.join("policy.toml");
        write_atomically(&path, text.as_bytes())?;
        policy_path = Some(path);
    }
    let issuer = if opts.dangerous_no_receipts {
        eprintln!("veritee-enclave: RECEIPTS ARE OFF (--dangerous-no-receipts): no job is signed or logged");
        None
    } else {
        Some(start_receipts(
            &config.state_dir.join(RECEIPTS_DIR),
            keys.receipt,
            &bundle.to_cbor(),
            model.digest,
            attester.claims().auditor_hpke_key.clone(),
        )?)
    };
    let mut names = vec!["localhost".to_string()];
    names.push(config.listen.ip().to_string());
    let cert = tls::attested_certificate(&keys.tls, &bundle, &names, 365)?;
    let tls = tls::server_config(&keys.tls, cert)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", config.listen))?;
    let model = Arc::new(model);
    let fingerprint = format!(
        "{}-{}",
        crate::RUNTIME_VERSION.replace(' ', "-"),
        &hex::encode(model.digest)[..12]
    );
    let engine = Engine::start(Arc::clone(&model), engine_limits);
    let state = Arc::new(AppState {
        engine,
        attester,
        issuer,
        limits: config.limits.clone(),
        metrics: Metrics::default(),
        fingerprint,
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        auditor_token_sha256: launch.auditor_token_sha256,
    });
    Ok(Runtime {
        state,
        tls,
        listener,
        policy_path,
    })
}

/// Recover the logs of earlier instances (a crash may have torn their last record) and
/// open this instance's log, whose first file is the evidence that binds its key.
fn start_receipts(
    root: &std::path::Path,
    key: aws_lc_rs::signature::Ed25519KeyPair,
    evidence: &[u8],
    model_digest: [u8; 32],
    auditor: Option<attestation::binding::HpkeKey>,
) -> Result<Issuer, String> {
    // Earlier instances are closed chains: recover each (a crash may have torn its last,
    // never acknowledged, record). A damaged one is reported, left as it is for the
    // auditor, and does not stop this instance.
    let earlier = receipt_log::list_instances(root).unwrap_or_default();
    for instance in earlier {
        let dir = root.join(hex::encode(instance));
        match receipt_log::recover_instance(&dir) {
            Ok(r) => eprintln!("veritee-enclave: receipt log: {r}"),
            Err(e) => eprintln!(
                "veritee-enclave: WARNING: receipt log {} is damaged and was left as it is: {e}",
                dir.display()
            ),
        }
    }
    let instance = crate::receipts::new_job_id();
    let log = ReceiptLog::create(root, instance, evidence, LogOptions::default())
        .map_err(|e| format!("opening the receipt log in {}: {e}", root.display()))?;
    eprintln!(
        "veritee-enclave: receipts: instance {} logging to {}",
        hex::encode(instance),
        log.dir().display()
    );
    Ok(Issuer::new(
        key,
        instance,
        crate::sha256(evidence),
        model_digest,
        auditor,
        log,
    ))
}

impl Runtime {
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown`, drain in-flight requests, stop the engine.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) -> bool {
        let state = Arc::clone(&self.state);
        let drained = server::serve(self.listener, self.tls, Arc::clone(&state), shutdown).await;
        tokio::task::spawn_blocking(move || {
            state.engine.shutdown();
            // Every job has finished; its receipt was made durable before it was answered.
            if let Some(issuer) = &state.issuer {
                issuer.log().shutdown();
            }
        })
        .await
        .ok();
        drained
    }
}

/// The simulated TEE, its written policy, and the simulated GPUs (none when `gpus` is 0).
type SimulatedParts = (
    Box<dyn EvidenceSource>,
    Option<String>,
    Option<Box<dyn crate::gpu::GpuEvidenceSource>>,
);

#[cfg(feature = "simulate")]
fn simulated_source(
    config: &Config,
    launch: &LoadedLaunchConfig,
    model_digest: [u8; 32],
    gpus: usize,
) -> Result<SimulatedParts, String> {
    use crate::attester::simulated::SimulatedSource;
    use crate::gpu::SimulatedGpuSource;
    eprintln!("{SIMULATION_WARNING}");
    let source = SimulatedSource::open(&config.state_dir.join("simulated-tee"), launch.digest)?;
    let gpu_source = if gpus > 0 {
        Some(SimulatedGpuSource::open(
            &config.state_dir.join("simulated-gpu"),
            gpus,
        )?)
    } else {
        None
    };
    let mut policy = simulated_policy(
        source.tee(),
        model_digest,
        launch.digest,
        launch.auditor_hpke_public_key,
    );
    if let Some(g) = &gpu_source {
        policy.push_str(&simulated_gpu_policy(g.gpus()));
    }
    Ok((
        Box::new(source),
        Some(policy),
        gpu_source.map(|g| Box::new(g) as Box<dyn crate::gpu::GpuEvidenceSource>),
    ))
}

/// The `[gpu]` section a simulated launch with simulated GPUs writes: exactly its GPU
/// count required, Hopper, the simulated driver and VBIOS versions as minimums, and the
/// simulated GPUs' FAKE root named as a dangerous extra root. RIMs are not appraised
/// (`rim = "dangerous_skip"`: a simulated launch serves RIMs only when the collateral
/// directory has them, `sim::nvidia::SimulatedGpus::rims`), but the simulated RIM root is
/// named in `dangerous_trusted_rim_roots`, so that `rim = "require"` appraises them.
#[cfg(feature = "simulate")]
pub fn simulated_gpu_policy(gpus: &sim::nvidia::SimulatedGpus) -> String {
    format!(
        r#"
# SIMULATED GPUs: their FAKE roots (dangerous_trusted_roots, dangerous_trusted_rim_roots)
# prove nothing about hardware. rim = "require" appraises the simulated RIMs, when the
# collateral directory's nvidia-rims/ has them.
[gpu]
count = {count}
architectures = ["hopper"]
min_driver_version = "{driver}"
min_vbios_version = "{vbios}"
rim = "dangerous_skip"
dangerous_trusted_roots = ["{root}"]
dangerous_trusted_rim_roots = ["{rim_root}"]
"#,
        count = gpus.count(),
        driver = sim::nvidia::SIM_DRIVER_VERSION,
        vbios = sim::nvidia::SIM_VBIOS_VERSION,
        root = hex::encode(gpus.root_sha256()),
        rim_root = hex::encode(gpus.rim_root_sha256()),
    )
}

#[cfg(not(feature = "simulate"))]
fn simulated_source(
    _config: &Config,
    _launch: &LoadedLaunchConfig,
    _model_digest: [u8; 32],
    _gpus: usize,
) -> Result<SimulatedParts, String> {
    let _ = SIMULATION_WARNING;
    Err("this build has no simulated TEE (built without the `simulate` feature, as release images are)".into())
}

/// The client policy that accepts exactly one simulated launch: `tee`'s measurement and
/// TCB, HOST_DATA = the launch configuration digest (what the simulated runtime puts
/// there), this model, launch configuration, runtime version and auditor key (none: `"none"`),
/// and `tee`'s development root, which the policy names as a dangerous extra root. It
/// requires VMPL 0, the launch's TCB as REPORTED, COMMITTED and LAUNCH minimum, a current
/// CRL from that root (`revocation = "require_crl"`: the simulated source serves one) and
/// forbids CXL memory; every other guest-policy and platform bit is "any".
#[cfg(feature = "simulate")]
pub fn simulated_policy(
    tee: &sim::tee::SimulatedSnp,
    model_digest: [u8; 32],
    launch_digest: [u8; 32],
    auditor_hpke_public_key: Option<[u8; 32]>,
) -> String {
    use attestation::snp::{Product, TcbVersion};
    let tcb = TcbVersion::from_raw(tee.reported_tcb(), Product::Genoa);
    // The launch's own auditor key, or "none": never "any" (the host could name its own).
    let auditor = auditor_hpke_public_key.map_or("\"none\"".to_string(), |k| {
        format!("[\"{}\"]", hex::encode(k))
    });
    format!(
        r#"# Written by `veritee-enclave serve --simulate` for its own SIMULATED launch.
# It trusts a development root generated on this machine (dangerous_trusted_roots):
# evidence it accepts proves nothing about hardware. Never use it for real data.
version = 1
platforms = ["snp"]
debug = "forbid"
report_data = "any"
dangerous_trusted_roots = ["{root}"]

[snp]
products = ["Genoa"]
signing_keys = ["vcek"]
revocation = "require_crl"
measurement = ["{measurement}"]
host_data = ["{host_data}"]
min_tcb = {{ bootloader = {bl}, tee = {tee_svn}, snp = {snp}, microcode = {ucode}, fmc = 0 }}
min_launch_tcb = {{ bootloader = {bl}, tee = {tee_svn}, snp = {snp}, microcode = {ucode}, fmc = 0 }}
min_committed_tcb = {{ bootloader = {bl}, tee = {tee_svn}, snp = {snp}, microcode = {ucode}, fmc = 0 }}
vmpl = [0]
migration_agent = "forbid"
smt = "allow"
min_guest_svn = "any"
id_key_digest = "any"
author_key_digest = "any"
family_id = "any"
image_id = "any"

[snp.guest_policy]
min_abi = "any"
single_socket = "any"
cxl_allow = "forbid"
mem_aes_256_xts = "any"
rapl_dis = "any"
ciphertext_hiding = "any"
page_swap_disable = "any"

[snp.platform_info]
smt_en = "any"
tsme_en = "any"
ecc_en = "any"
rapl_dis = "any"
ciphertext_hiding_en = "any"
alias_check_complete = "any"
tio_en = "any"

[runtime]
model_digests = ["{model}"]
launch_config_digests = ["{launch}"]
runtime_versions = ["{version}"]
auditor_hpke_keys = {auditor}
"#,
        model = hex::encode(model_digest),
        launch = hex::encode(launch_digest),
        version = crate::RUNTIME_VERSION,
        root = hex::encode(crate::sha256(tee.ark_der())),
        measurement = hex::encode(tee.measurement()),
        host_data = hex::encode(launch_digest),
        bl = tcb.bootloader,
        tee_svn = tcb.tee,
        snp = tcb.snp,
        ucode = tcb.microcode,
    )
}

/// The engine's limits from the configuration, refused when the KV-cache budget cannot
/// hold one request of the largest size the limits allow (it could never be served).
fn engine_limits(limits: &Limits, model: &LoadedModel) -> Result<EngineLimits, String> {
    let per_token = model.model.config().kv_bytes_per_token().max(1);
    let kv_cache_bytes = limits.kv_cache_mib.saturating_mul(1 << 20);
    let budget = kv_cache_bytes / per_token;
    let largest =
        (limits.max_prompt_tokens + limits.max_tokens).min(model.model.config().context_length);
    if budget < largest {
        return Err(format!(
            "limits.kv_cache_mib = {} holds {budget} positions of this model's KV cache ({per_token} bytes each), \
             but one request may need {largest} (max_prompt_tokens + max_tokens, within the model's context): \
             raise kv_cache_mib to at least {} or lower those limits",
            limits.kv_cache_mib,
            (largest * per_token).div_ceil(1 << 20)
        ));
    }
    Ok(EngineLimits {
        max_batch: limits.max_batch,
        queue_depth: limits.queue_depth,
        prefill_chunk: limits.prefill_chunk_tokens,
        kv_cache_bytes,
    })
}

/// Write a file by renaming a complete temporary sibling into place, so a reader never
/// sees half a policy.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
