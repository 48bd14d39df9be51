import FoundationEssentials
import Prometheus
import Synchronization

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
    /// The series already made, by operation, area and status (the registry's lookup builds label arrays and
    /// takes its lock on every call).
    private let series = Mutex<[SeriesKey: (requests: Counter, duration: DurationHistogram)]>([:])

    private struct SeriesKey: Hashable {
        var operation: String
        var area: String
        var status: Int
    }
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
        let key = SeriesKey(operation: operation, area: area, status: status)
        let (requests, histogram) = series.withLock { series in
            if let found = series[key] { return found }
            let made = makeSeries(operation: operation, area: area, status: status)
            series[key] = made
            return made
        }
        requests.increment()
        histogram.record(duration)
    }

    private func makeSeries(
        operation: String, area: String, status: Int
    ) -> (requests: Counter, duration: DurationHistogram) {
        let labels = [("operation", operation), ("area", area), ("code", String(status))]
        let requests = registry.makeCounter(
            descriptor: .init(
                namespace: "vhsmd", metricName: "requests", unitName: "total",
                helpText: "API requests answered, by operation, area and HTTP status."),
            labels: labels)
        let duration = registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "vhsmd", metricName: "request_duration", unitName: "seconds",
                helpText: "Time from a request's arrival to its answer, by operation and area."),
            labels: [("operation", operation), ("area", area)], buckets: latencyBuckets)
        return (requests, duration)
    }

    func recordAuditFailure() { auditFailures.increment() }

    func setSealed(_ value: Bool) { sealed.set(to: value ? 1 : 0) }

    /// The Prometheus text exposition format, version 0.0.4.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
