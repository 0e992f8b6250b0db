import Foundation
import Logging
import Metrics
import OutlawProtocol
import OutlawTestSupport
import Prometheus
import Synchronization
import Testing
@testable import Metrc
@testable import OutlawMetrics

/// The backend (help text and buckets from the catalog) and the HTTP endpoint, on a registry of each test's own:
/// `MetricsSystem` is bootstrapped by outlawd's main only, never here.
@Suite("Metrics backend and endpoint")
struct MetricsEndpointTests {
    @Test func familiesGetTheirHelpTextAndBuckets() {
        let registry = PrometheusCollectorRegistry()
        let factory = OutlawMetricsFactory(registry: registry)
        Counter(label: "outlawd_batches_total", dimensions: [("result", "stored")], factory: factory).increment(by: 3)
        Metrics.Timer(label: "outlawd_commit_duration_seconds", factory: factory).record(duration: .milliseconds(3))
        Gauge(label: "outlawd_devices_connected", factory: factory).record(2)
        let text = registry.emitToString()
        #expect(text.contains("# HELP outlawd_batches_total Batches answered"))
        #expect(text.contains("# TYPE outlawd_batches_total counter"))
        #expect(text.contains(#"outlawd_batches_total{result="stored"} 3"#))
        #expect(text.contains("# TYPE outlawd_commit_duration_seconds histogram"))
        #expect(text.contains(#"outlawd_commit_duration_seconds_bucket{le="0.0005"} 0"#), "\(text)")
        #expect(text.contains(#"outlawd_commit_duration_seconds_bucket{le="0.005"} 1"#), "\(text)")
        #expect(text.contains("outlawd_devices_connected 2"))
    }

    @Test func everyFamilyHasHelpAndAFixedName() {
        #expect(Set(MetricsCatalog.all.map(\.name)).count == MetricsCatalog.all.count)
        for family in MetricsCatalog.all {
            #expect(family.name.hasPrefix("outlawd_") && !family.help.isEmpty)
            #expect(family.name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
            #expect(family.buckets == family.buckets.sorted())
        }
    }

    @Test func metrcRequestsAreLabelledByActionNeverByPath() {
        #expect(MetrcMetrics.action(method: .PUT, path: "/plants/v2/harvest") == "harvest_plants")
        #expect(MetrcMetrics.action(method: .POST, path: "/packages/v2/adjust") == "adjust_packages")
        #expect(MetrcMetrics.action(method: .DELETE, path: "/plants/v2/") == "destroy_plants")
        #expect(MetrcMetrics.action(method: .GET, path: "/facilities/v2/") == "check_key")
        #expect(MetrcMetrics.action(method: .GET, path: "/plants/v2/vegetative") == "reference")
        #expect(MetrcMetrics.action(method: .GET, path: "/plants/v2/waste/reasons") == "reference")
        #expect(MetrcMetrics.action(method: .GET, path: "/plants/v2/waste") == "read_back")
        #expect(MetrcMetrics.action(method: .GET, path: "/plants/v2/1A4FF0100000022000000001") == "read_back")
        for action in MetrcAction.allCases {
            #expect(MetrcMetrics.action(method: .init(rawValue: action.method), path: action.path) == action.rawValue)
        }
        #expect(MetrcMetrics.statusClass(nil) == "error")
        #expect(MetrcMetrics.statusClass(204) == "2xx")
        #expect(MetrcMetrics.statusClass(429) == "4xx")
        #expect(MetrcMetrics.statusClass(503) == "5xx")
    }

    @Test func servesMetricsOverHTTPAndRefreshesFirst() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = OutlawMetricsFactory(registry: registry)
        let gauge = Gauge(label: "outlawd_devices_connected", factory: factory)
        let refreshes = Refreshes()
        let endpoint = MetricsEndpoint(host: "127.0.0.1", port: 0, registry: registry, logger: Logger(label: "test"),
                                       refresh: { gauge.record(Double(refreshes.next())) })
        let server = Task { try await endpoint.run() }
        defer { server.cancel() }
        var ports = endpoint.listeningPorts.makeAsyncIterator()
        let port = try #require(await ports.next())
        let base = "http://127.0.0.1:\(port)"

        let first = try await runCommand("/usr/bin/curl", ["-s", "-D", "-", base + "/metrics"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("200 OK"))
        #expect(first.stdout.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(first.stdout.contains("outlawd_devices_connected 1"))
        let second = try await runCommand("/usr/bin/curl", ["-sf", base + "/metrics?x=1"])
        #expect(second.stdout.contains("outlawd_devices_connected 2"))

        let missing = try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/"])
        #expect(missing.stdout == "404")
        let post = try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", base + "/metrics"])
        #expect(post.stdout == "405")
        // Two scrapes on one kept-alive connection, as Prometheus does.
        let both = try await runCommand("/usr/bin/curl", ["-sf", base + "/metrics", base + "/metrics"])
        #expect(both.stdout.components(separatedBy: "# TYPE outlawd_devices_connected gauge").count == 3)
    }
}

/// Counts refreshes, made on the endpoint's queue.
final class Refreshes: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Int { count.add(1, ordering: .relaxed).newValue }
}
