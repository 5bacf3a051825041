//! Prometheus metrics (`/metrics`) and alert counters. One registry per server; the handlers
//! and the execution path update it, and pool and session gauges are read at scrape time.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Executions finished, by status and language.
    pub executions: IntCounterVec,
    /// Execution wall time, by language.
    pub execution_seconds: HistogramVec,
    /// HTTP requests, by route and status.
    pub http_requests: IntCounterVec,
    /// HTTP latency, by route.
    pub http_seconds: HistogramVec,
    /// Live sessions on this node.
    pub active_sessions: IntGauge,
    /// Executions running now.
    pub running_executions: IntGauge,
    /// Executions waiting for a slot.
    pub queue_depth: IntGauge,
    /// Warm pool sizes, by template.
    pub pool_size: IntGaugeVec,
    /// Pool hits, by template (a gauge mirroring the engine's counter).
    pub pool_hits: IntGaugeVec,
    /// Pool misses, by template (a gauge mirroring the engine's counter).
    pub pool_misses: IntGaugeVec,
    /// Peak memory of finished executions, in bytes.
    pub sandbox_memory_bytes: HistogramVec,
    /// Alerts raised, by name.
    pub alerts: IntCounterVec,
    /// Requests refused for a rate or concurrency limit, by reason.
    pub throttled: IntCounterVec,
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("metric")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let seconds = vec![
            0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let bytes = prometheus::exponential_buckets(1_048_576.0, 2.0, 13).expect("buckets");
        let m = Metrics {
            registry: Registry::new(),
            executions: IntCounterVec::new(
                Opts::new("brig_executions_total", "Executions finished"),
                &["status", "language"],
            )
            .expect("metric"),
            execution_seconds: histogram(
                "brig_execution_duration_seconds",
                "Execution wall time",
                &["language"],
                seconds.clone(),
            ),
            http_requests: IntCounterVec::new(
                Opts::new("brig_http_requests_total", "HTTP requests"),
                &["route", "status"],
            )
            .expect("metric"),
            http_seconds: histogram(
                "brig_http_request_duration_seconds",
                "HTTP request latency",
                &["route"],
                seconds,
            ),
            active_sessions: IntGauge::new("brig_active_sessions", "Live sessions").expect("m"),
            running_executions: IntGauge::new("brig_running_executions", "Executions running")
                .expect("metric"),
            queue_depth: IntGauge::new("brig_queue_depth", "Executions waiting for a slot")
                .expect("metric"),
            pool_size: IntGaugeVec::new(
                Opts::new("brig_pool_size", "Ready sandboxes in a warm pool"),
                &["template"],
            )
            .expect("metric"),
            pool_hits: IntGaugeVec::new(
                Opts::new("brig_pool_hits_total", "Takes served from a warm pool"),
                &["template"],
            )
            .expect("metric"),
            pool_misses: IntGaugeVec::new(
                Opts::new(
                    "brig_pool_misses_total",
                    "Takes that had to build a sandbox",
                ),
                &["template"],
            )
            .expect("metric"),
            sandbox_memory_bytes: histogram(
                "brig_sandbox_memory_peak_bytes",
                "Peak memory of finished executions",
                &["language"],
                bytes,
            ),
            alerts: IntCounterVec::new(Opts::new("brig_alerts_total", "Alerts raised"), &["alert"])
                .expect("metric"),
            throttled: IntCounterVec::new(
                Opts::new("brig_throttled_total", "Requests refused with 429"),
                &["reason"],
            )
            .expect("metric"),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.executions.clone()),
            Box::new(m.execution_seconds.clone()),
            Box::new(m.http_requests.clone()),
            Box::new(m.http_seconds.clone()),
            Box::new(m.active_sessions.clone()),
            Box::new(m.running_executions.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.pool_size.clone()),
            Box::new(m.pool_hits.clone()),
            Box::new(m.pool_misses.clone()),
            Box::new(m.sandbox_memory_bytes.clone()),
            Box::new(m.alerts.clone()),
            Box::new(m.throttled.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("unique metric");
        }
        m
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encode metrics");
        String::from_utf8(buffer).expect("utf-8 metrics")
    }

    /// Counts one alert and logs it.
    pub fn alert(&self, name: &str, detail: &str) {
        self.alerts.with_label_values(&[name]).inc();
        tracing::warn!(alert = name, detail, "alert");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.executions.with_label_values(&["ok", "python"]).inc();
        m.alert("sandbox_memory", "90% of its limit");
        let text = m.render();
        assert!(text.contains("brig_executions_total{language=\"python\",status=\"ok\"} 1"));
        assert!(text.contains("brig_alerts_total{alert=\"sandbox_memory\"} 1"));
        assert!(text.contains("# TYPE brig_queue_depth gauge"));
    }
}
