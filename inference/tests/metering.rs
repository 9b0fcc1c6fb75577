//! CPU metering of the forward's worker threads (inference::metering) on the real model.
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use candle_core::Device;
use inference::gguf::{model_for_tests, GgufFile};
use inference::metering::{job_cpu_time, thread_cpu_time, worker_cpu_time};
use inference::model::{Model, Output};

#[test]
fn forward_workers_cpu_time_is_counted() {
    let path = model_for_tests();
    let file = GgufFile::open(&path).expect("open model");
    let model = Model::load(&file, &Device::Cpu).expect("load model");
    assert!(model.uses_cpu_kernels());
    let tokens: Vec<u32> = (0..64).map(|i| 100 + 37 * i).collect();

    let (job0, thread0, worker0) = (job_cpu_time(), thread_cpu_time(), worker_cpu_time());
    let mut cache = model.new_cache();
    model
        .forward_with_threads(&tokens, 0, &mut cache, Output::Last, 2)
        .expect("forward");
    let (job1, thread1, worker1) = (job_cpu_time(), thread_cpu_time(), worker_cpu_time());
    let (job, thread, worker) = (job1 - job0, thread1 - thread0, worker1 - worker0);
    eprintln!("2 threads: this thread {thread:?}, workers {worker:?}, job {job:?}");
    assert!(worker > std::time::Duration::ZERO);
    assert!(job >= thread);

    // One thread: no workers, nothing added.
    let before = worker_cpu_time();
    let mut cache = model.new_cache();
    model
        .forward_with_threads(&tokens, 0, &mut cache, Output::Last, 1)
        .expect("forward");
    assert_eq!(worker_cpu_time(), before);
}
