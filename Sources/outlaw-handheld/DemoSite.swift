import Foundation
import OutlawConfig

/// Why the demo cannot go on: `setup` problems (no daemon, bad files, no sandbox) exit 2, the rest 1.
enum HandheldError: Error, CustomStringConvertible {
    case setup(String)
    case failed(String)

    var description: String {
        switch self {
        case .setup(let text), .failed(let text): text
        }
    }
}

/// The demo daemon as `outlawd --dev` describes it in its folder: where devices connect, the demo device's
/// token, and the Metrc sandbox it uploads to.
struct DemoSite: Sendable {
    /// `outlawd.toml` as the tech would type it (relative when they gave a relative folder), for printed commands.
    let configPath: String
    let deviceHost: String
    let devicePort: Int
    let metrcBaseURL: String
    let license: String
    let token: String

    static func load(folder: String) throws -> DemoSite {
        let configPath = folder.hasSuffix("/") ? folder + "outlawd.toml" : folder + "/outlawd.toml"
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw HandheldError.setup("\(configPath) does not exist: start `outlawd --dev` (or run scripts/demo) first, or pass --dir")
        }
        let config: DaemonConfiguration
        do {
            config = try DaemonConfiguration.load(path: configPath)
        } catch {
            throw HandheldError.setup("\(error)")
        }
        let tokenPath = (configPath as NSString).deletingLastPathComponent + "/demo-device-token"
        guard let text = try? String(contentsOfFile: tokenPath, encoding: .utf8),
              case let token = text.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty
        else {
            throw HandheldError.setup("cannot read the demo device's token from \(tokenPath)")
        }
        // A daemon listening on every interface is reached over loopback.
        let host = ["0.0.0.0", "::", "[::]", "localhost"].contains(config.server.host) ? "127.0.0.1" : config.server.host
        return DemoSite(configPath: configPath, deviceHost: host, devicePort: config.server.port,
                        metrcBaseURL: config.metrc.baseURL ?? "", license: config.facility.license, token: token)
    }
}
