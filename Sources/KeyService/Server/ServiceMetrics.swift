import FoundationEssentials
import Prometheus

/// What `GET /v1/sys/metrics?format=prometheus` reports: requests by operation, mount class and status, their
/// latency, audit failures, the seal state and the start time. Labels take values from small fixed sets (the
/// mount's type, never a request path), so the series count stays bounded.
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1),
    ]
    private let auditFailures: Counter
    private let sealed: Gauge

    init(start: Date = Date()) {
        auditFailures = registry.makeCounter(
            descriptor: .init(
                namespace: "vhsmd", metricName: "audit_failures", unitName: "total",
                helpText: "Requests refused because no audit device could record them."))
        sealed = registry.makeGauge(
            descriptor: .init(
                namespace: "vhsmd", metricName: "sealed", unitName: "",
                helpText: "1 while the barrier is sealed or uninitialised."))
        registry.makeGauge(
            descriptor: .init(
                namespace: "process", metricName: "start_time", unitName: "seconds",
                helpText: "Start time of the process since the Unix epoch.")
        ).set(to: start.timeIntervalSince1970)
    }

    /// One answered API request. `area` is "sys", "auth/token", a mount type ("transit", "kv") or "unrouted".
    func record(operation: String, area: String, status: Int, duration: Duration) {
        let labels = [("operation", operation), ("area", area), ("code", String(status))]
        registry.makeCounter(
            descriptor: .init(
                namespace: "vhsmd", metricName: "requests", unitName: "total",
                helpText: "API requests answered, by operation, area and HTTP status."),
            labels: labels
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "vhsmd", metricName: "request_duration", unitName: "seconds",
                helpText: "Time from a request's arrival to its answer, by operation and area."),
            labels: [("operation", operation), ("area", area)], buckets: latencyBuckets
        ).record(duration)
    }

    func recordAuditFailure() { auditFailures.increment() }

    func setSealed(_ value: Bool) { sealed.set(to: value ? 1 : 0) }

    /// The Prometheus text exposition format, version 0.0.4.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
