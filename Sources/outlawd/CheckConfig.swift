import Foundation
import OutlawConfig
import OutlawDaemon

extension Outlawd {
    /// `outlawd --check-config`: exit 0 with "configuration OK" and any warnings on stdout, or 2 with one line per
    /// problem (then the warnings) on stderr. Nothing is opened or started; no key is ever printed.
    func checkConfiguration() -> Never {
        if dev { Outlawd.fail("outlawd: --check-config checks a configuration file, not --dev", code: 2) }
        var configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.load(path: config)
            try applyListen(&configuration)
        } catch {
            Outlawd.fail("outlawd: \(error)", code: 2)
        }
        let check = ConfigCheck.run(configuration)
        let warnings = check.warnings.map { "outlawd: warning: \($0)" }
        guard check.ok else {
            Outlawd.fail((check.problems.map { "outlawd: \($0)" } + warnings).joined(separator: "\n"), code: 2)
        }
        for line in warnings { print(line) }
        print("outlawd: \(configuration.file ?? config): configuration OK")
        Foundation.exit(0)
    }
}
