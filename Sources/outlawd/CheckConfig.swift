import Foundation
import OutlawConfig
import OutlawDaemon

extension Outlawd {
    /// `outlawd --check-config`: exit 0 with "configuration OK" and any warnings on stdout, or 2 with one line per
    /// problem (then the warnings) on stderr. Nothing is opened or started; no key is ever printed.
    func checkConfiguration() -> Never {
        if dev { Outlawd.fail("outlawd: --check-config checks a configuration file, not --dev", code: 2) }
        let configuration = loadConfigurationOrExit()
        let check = ConfigCheck.run(configuration)
        let warnings = check.warnings.map { "outlawd: warning: \($0)" }
        guard check.ok else {
            Outlawd.fail((check.problems.map { "outlawd: \($0)" } + warnings).joined(separator: "\n"), code: 2)
        }
        for line in warnings { print(line) }
        print("outlawd: \(configuration.file ?? config): configuration OK")
        Foundation.exit(0)
    }

    /// The configuration file with `--listen` applied; a problem is one line and exit 2.
    func loadConfigurationOrExit() -> DaemonConfiguration {
        do {
            var configuration = try DaemonConfiguration.load(path: config)
            try applyListen(&configuration)
            return configuration
        } catch {
            Outlawd.fail("outlawd: \(error)", code: 2)
        }
    }
}
